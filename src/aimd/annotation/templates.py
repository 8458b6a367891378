"""Versioned annotation templates and taxonomy change reports (001 §10.1.3, §8.2.1).

An :class:`AnnotationTemplate` fixes, for one project, which taxonomy labels may be annotated, with
which annotation types, which attributes are required and the QC thresholds of the task
(001 §9.1.1 note 2). :func:`diff_taxonomies` reports every change between two taxonomy versions —
labels added or removed, fields, attribute schemas and enum values changed — marks the breaking
ones, and says whether the version number was bumped enough (breaking → major, additions → minor).

Example
-------
>>> from aimd.annotation.taxonomy import default_taxonomy
>>> old = default_taxonomy()
>>> labels = [lb for lb in old.labels if lb.code != "PNEUMONIA_GGO"]
>>> new = old.model_copy(update={"version": "1.1.0", "labels": labels})
>>> d = diff_taxonomies(old, new)
>>> [(c.kind, c.code, c.breaking) for c in d.changes], d.version_bump_ok
([('removed', 'PNEUMONIA_GGO', True)], False)
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aimd.annotation.io import validation_message
from aimd.annotation.schema import AnnotationType, TaxonomyRef
from aimd.annotation.taxonomy import AttributeSchema, LabelNode, Taxonomy
from aimd.core.errors import InvalidInputError, SchemaError

__all__ = [
    "AnnotationTemplate",
    "TaxonomyChange",
    "TaxonomyDiff",
    "TemplateEntry",
    "default_template",
    "diff_taxonomies",
    "load_template",
    "template_json_schema",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TemplateEntry(_Model):
    """One label of a template: allowed types, required attributes, how many per package."""

    label_code: str
    types: list[AnnotationType] = Field(min_length=1)
    required_attributes: list[str] = Field(default_factory=list)
    max_count: int | None = Field(None, ge=1)


class AnnotationTemplate(_Model):
    """A versioned task template loaded per project (001 §10.1.3, §6.3.1)."""

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    title: str = ""
    description: str = ""
    taxonomy: TaxonomyRef
    entries: list[TemplateEntry] = Field(min_length=1)
    qc: dict[str, Any] = Field(default_factory=dict, description="QC thresholds of the task (§9.1.1 note 2)")

    def entry(self, code: str) -> TemplateEntry | None:
        """The entry of label ``code``."""
        return next((e for e in self.entries if e.label_code == code), None)

    def problems_with(self, taxonomy: Taxonomy) -> list[str]:
        """Why this template does not fit ``taxonomy`` (unknown labels or attributes, version)."""
        out = []
        if (self.taxonomy.name, self.taxonomy.version) != (taxonomy.name, taxonomy.version):
            out.append(
                f"template {self.id} {self.version} is for taxonomy {self.taxonomy.name} "
                f"{self.taxonomy.version}, not {taxonomy.name} {taxonomy.version}"
            )
        for e in self.entries:
            node = taxonomy.get(e.label_code)
            if node is None:
                out.append(f"label {e.label_code} is not in the taxonomy")
                continue
            out += [
                f"label {e.label_code}: attribute {a!r} is not defined in the taxonomy"
                for a in e.required_attributes
                if node.attribute(a) is None
            ]
        return out


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"{what} file does not exist", where=str(path), hint=f"pass a {what} .json file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid UTF-8 JSON: {err}", where=str(path), hint="fix the JSON syntax") from None


def _template(obj: Any, where: str) -> AnnotationTemplate:
    try:
        return AnnotationTemplate.model_validate(obj)
    except ValidationError as err:
        raise SchemaError(
            f"invalid annotation template:\n{validation_message(err)}",
            where=where,
            hint="see `aimd annotation schema --model template`",
        ) from None


def load_template(path: str | Path) -> AnnotationTemplate:
    """Read a template JSON file."""
    p = Path(path)
    return _template(_load_json(p, "template"), str(p))


def default_template() -> AnnotationTemplate:
    """The built-in template for the phantom chest/upper-abdomen CT task.

    Example
    -------
    >>> default_template().entry("LUNG_NODULE").required_attributes
    ['density', 'margin', 'diameter_mm', 'lobe']
    """
    text = resources.files("aimd.annotation").joinpath("data/template_phantom_chest_ct.json").read_text("utf-8")
    return _template(json.loads(text), "aimd/annotation/data/template_phantom_chest_ct.json")


def template_json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`AnnotationTemplate`."""
    return AnnotationTemplate.model_json_schema()


# --------------------------------------------------------------------------------------------- diff
class TaxonomyChange(_Model):
    """One difference between two taxonomy versions."""

    kind: Literal["added", "removed", "changed"]
    code: str
    field: str | None = None
    old: Any = None
    new: Any = None
    breaking: bool


class TaxonomyDiff(_Model):
    """Every change from ``old`` to ``new`` and whether the version number reflects them."""

    old: TaxonomyRef
    new: TaxonomyRef
    changes: list[TaxonomyChange]
    breaking: bool
    required_bump: Literal["none", "patch", "minor", "major"]
    version_bump_ok: bool


_BREAKING_FIELDS = {"category", "level", "parent", "mask_value", "z_continuous"}


def _attribute_changes(code: str, old: AttributeSchema, new: AttributeSchema) -> list[TaxonomyChange]:
    field = f"attributes.{old.name}"
    out = []
    if old.kind != new.kind:
        return [
            TaxonomyChange(kind="changed", code=code, field=f"{field}.kind", old=old.kind, new=new.kind, breaking=True)
        ]
    if old.required != new.required:
        out.append(
            TaxonomyChange(
                kind="changed",
                code=code,
                field=f"{field}.required",
                old=old.required,
                new=new.required,
                breaking=new.required,
            )
        )
    for bound, narrower in (
        ("minimum", lambda a, b: b is not None and (a is None or b > a)),
        ("maximum", lambda a, b: b is not None and (a is None or b < a)),
    ):
        a, b = getattr(old, bound), getattr(new, bound)
        if a != b:
            out.append(
                TaxonomyChange(
                    kind="changed", code=code, field=f"{field}.{bound}", old=a, new=b, breaking=bool(narrower(a, b))
                )
            )
    if old.unit != new.unit:
        out.append(
            TaxonomyChange(kind="changed", code=code, field=f"{field}.unit", old=old.unit, new=new.unit, breaking=True)
        )
    old_values, new_values = set(old.value_codes()), set(new.value_codes())
    out += [
        TaxonomyChange(kind="removed", code=code, field=f"{field}.values", old=v, breaking=True)
        for v in sorted(old_values - new_values)
    ]
    out += [
        TaxonomyChange(kind="added", code=code, field=f"{field}.values", new=v, breaking=False)
        for v in sorted(new_values - old_values)
    ]
    for name in ("description", "text_tolerance"):
        if getattr(old, name) != getattr(new, name):
            out.append(
                TaxonomyChange(
                    kind="changed",
                    code=code,
                    field=f"{field}.{name}",
                    old=getattr(old, name),
                    new=getattr(new, name),
                    breaking=False,
                )
            )
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _label_changes(old: LabelNode, new: LabelNode) -> list[TaxonomyChange]:
    out = []
    for name in LabelNode.model_fields:
        if name == "attributes":
            continue
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            out.append(
                TaxonomyChange(
                    kind="changed",
                    code=old.code,
                    field=name,
                    old=_plain(a),
                    new=_plain(b),
                    breaking=name in _BREAKING_FIELDS,
                )
            )
    old_attrs = {a.name: a for a in old.attributes}
    new_attrs = {a.name: a for a in new.attributes}
    for name in old_attrs.keys() - new_attrs.keys():
        out.append(TaxonomyChange(kind="removed", code=old.code, field=f"attributes.{name}", breaking=True))
    for name in new_attrs.keys() - old_attrs.keys():
        out.append(
            TaxonomyChange(kind="added", code=old.code, field=f"attributes.{name}", breaking=new_attrs[name].required)
        )
    for name in old_attrs.keys() & new_attrs.keys():
        out += _attribute_changes(old.code, old_attrs[name], new_attrs[name])
    return out


def _bump(old: str, new: str) -> str:
    a = [int(x) for x in old.split(".")] + [0] * (3 - len(old.split(".")))
    b = [int(x) for x in new.split(".")] + [0] * (3 - len(new.split(".")))
    if b[0] > a[0]:
        return "major"
    if b[0] == a[0] and b[1] > a[1]:
        return "minor"
    if b[:2] == a[:2] and b[2] > a[2]:
        return "patch"
    return "none"


def diff_taxonomies(old: Taxonomy, new: Taxonomy) -> TaxonomyDiff:
    """All changes from ``old`` to ``new`` (001 §10.1.3 change records).

    Breaking changes (a label, attribute or enum value removed; a required attribute added; a range
    narrowed; a parent, level, category or unit changed) need a major version bump; additions a
    minor one; wording changes a patch.
    """
    old_labels = {n.code: n for n in old.labels}
    new_labels = {n.code: n for n in new.labels}
    changes = [TaxonomyChange(kind="removed", code=c, breaking=True) for c in old_labels if c not in new_labels]
    changes += [TaxonomyChange(kind="added", code=c, breaking=False) for c in new_labels if c not in old_labels]
    for code in old_labels.keys() & new_labels.keys():
        changes += _label_changes(old_labels[code], new_labels[code])
    changes.sort(key=lambda c: (c.code, c.field or "", c.kind))
    breaking = any(c.breaking for c in changes)
    additive = any(c.kind == "added" for c in changes)
    needed = "major" if breaking else "minor" if additive else "patch" if changes else "none"
    bump = _bump(old.version, new.version)
    rank = {"none": 0, "patch": 1, "minor": 2, "major": 3}
    return TaxonomyDiff(
        old=TaxonomyRef(name=old.name, version=old.version),
        new=TaxonomyRef(name=new.name, version=new.version),
        changes=changes,
        breaking=breaking,
        required_bump=needed,
        version_bump_ok=rank[bump] >= rank[needed],
    )
