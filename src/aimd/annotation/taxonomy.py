"""Hierarchical label taxonomy with attribute schemas (001 §8.2, §8.3, App. C.1).

A :class:`Taxonomy` is a versioned tree of :class:`LabelNode` s — system → organ → substructure →
feature (§8.3 a–d) — each with a unique UPPER_SNAKE code (§8.2.2 a, App. C.1 note), a definition
(§8.2.2 b), structural attributes (§8.2.2 c), cross-modal correspondences (§8.2.2 d), extension
attribute schemas (§8.2.2 e: enum / number with unit and range / integer / text / boolean,
optionally required) and optional RadLex / SNOMED CT codes. The default taxonomy covers the phantom's
organs and lesions (``data/taxonomy_default.json``).

Example
-------
>>> tax = default_taxonomy()
>>> tax.get("LUNG_NODULE").category.value, [n.code for n in tax.path("LUNG_NODULE")]
('lesion', ['RESPIRATORY_SYSTEM', 'LUNG', 'LUNG_NODULE'])
>>> problems = dict(tax.check_attributes("LUNG_NODULE", {"diameter_mm": 250, "lobe": "RUL"}))
>>> problems["diameter_mm"], problems["density"]
('value 250 is above the maximum 100 mm', 'required attribute is missing')
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimd.annotation.io import validation_message
from aimd.annotation.schema import Category
from aimd.core.errors import InvalidInputError, SchemaError

__all__ = [
    "LEVEL_DEPTH",
    "AttributeSchema",
    "EnumValue",
    "ExternalCode",
    "LabelNode",
    "Level",
    "Taxonomy",
    "default_taxonomy",
    "load_taxonomy",
    "taxonomy_json_schema",
]

_CODE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_VERSION = re.compile(r"^\d+\.\d+(?:\.\d+)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Level(StrEnum):
    """Hierarchy level (001 §8.3 a–d)."""

    SYSTEM = "system"
    ORGAN = "organ"
    SUBSTRUCTURE = "substructure"
    FEATURE = "feature"


LEVEL_DEPTH: dict[Level, int] = {Level.SYSTEM: 1, Level.ORGAN: 2, Level.SUBSTRUCTURE: 3, Level.FEATURE: 4}


class EnumValue(_Model):
    """One allowed value of an enum attribute, with display names that text may use."""

    code: str = Field(min_length=1)
    en: str = ""
    zh: str = ""
    synonyms: list[str] = Field(default_factory=list)

    def names(self) -> list[str]:
        """Every spelling of this value (code, English, Chinese, synonyms), non-empty."""
        return [n for n in (self.code, self.en, self.zh, *self.synonyms) if n]


class AttributeSchema(_Model):
    """Schema of one attribute (001 §8.2.2 e, §10.1.2 c: dictionary, enum values, unit and range)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["enum", "number", "integer", "text", "boolean"]
    description: str = ""
    required: bool = False
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    values: list[EnumValue] | None = None
    text_tolerance: float = Field(0.0, ge=0, description="allowed |image − text| for numbers (§8.5.2.3)")

    @model_validator(mode="after")
    def _consistent(self) -> AttributeSchema:
        if self.kind == "enum" and not self.values:
            raise ValueError(f"enum attribute {self.name!r} needs values")
        if self.kind != "enum" and self.values:
            raise ValueError(f"only enum attributes have values ({self.name!r} is {self.kind})")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"attribute {self.name!r}: minimum {self.minimum} > maximum {self.maximum}")
        return self

    def value_codes(self) -> list[str]:
        """Allowed enum codes (empty for other kinds)."""
        return [v.code for v in self.values or []]

    def check(self, value: Any) -> str | None:
        """Why ``value`` fails this schema, or ``None`` when it passes.

        Example
        -------
        >>> AttributeSchema(name="d", kind="number", unit="mm", minimum=1).check(0.5)
        'value 0.5 is below the minimum 1 mm'
        """
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "enum":
            if value not in self.value_codes():
                return f"value {value!r} is not one of {self.value_codes()}"
            return None
        if self.kind == "text":
            return None if isinstance(value, str) else f"expected text, got {type(value).__name__}"
        if self.kind == "boolean":
            return None if isinstance(value, bool) else f"expected true/false, got {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a {self.kind}, got {value!r}"
        if self.kind == "integer" and not isinstance(value, int):
            return f"expected an integer, got {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"value {value} is below the minimum {self.minimum:g}{unit}"
        if self.maximum is not None and value > self.maximum:
            return f"value {value} is above the maximum {self.maximum:g}{unit}"
        return None

    def value_from_text(self, text: str) -> Any:
        """The value a text fragment states, or ``None`` when it cannot be read.

        Numbers: the first number in the text. Enums: the value whose longest name occurs in the text.

        Example
        -------
        >>> s = AttributeSchema(name="margin", kind="enum", values=[
        ...     EnumValue(code="well_defined", en="well-defined", zh="清晰"),
        ...     EnumValue(code="ill_defined", en="ill-defined", zh="欠清")])
        >>> s.value_from_text("with ill-defined margins"), s.value_from_text("边界清晰")
        ('ill_defined', 'well_defined')
        """
        if self.kind in ("number", "integer"):
            m = _NUMBER.search(text)
            return float(m.group()) if m else None
        if self.kind == "enum":
            folded = text.casefold()
            best: tuple[int, str] | None = None
            for v in self.values or []:
                for name in v.names():
                    if name.casefold() in folded and (best is None or len(name) > best[0]):
                        best = (len(name), v.code)
            return best[1] if best else None
        return None

    def conflicts(self, image_value: Any, text_value: Any) -> bool:
        """True when an image attribute and a value read from text disagree."""
        if text_value is None or image_value is None:
            return False
        if self.kind in ("number", "integer"):
            if isinstance(image_value, bool) or not isinstance(image_value, int | float):
                return False
            return abs(float(image_value) - float(text_value)) > self.text_tolerance + 1e-9
        return bool(image_value != text_value)


class ExternalCode(_Model):
    """A code in an external terminology (RadLex, SNOMED CT)."""

    system: str = Field(min_length=1, description="e.g. 'SNOMED CT' (scheme SCT) or 'RadLex' (RADLEX)")
    code: str = Field(min_length=1)
    meaning: str = Field(min_length=1)


class LabelNode(_Model):
    """One label: code, names, definition, place in the hierarchy and attribute schemas."""

    code: str
    name_en: str = Field(min_length=1)
    name_zh: str = ""
    category: Category
    level: Level | None = Field(None, description="hierarchy level; None only for attribute labels")
    parent: str | None = None
    definition: str = Field(min_length=1)
    structural: dict[str, str | bool | int | float] = Field(default_factory=dict)
    attributes: list[AttributeSchema] = Field(default_factory=list)
    codes: list[ExternalCode] = Field(default_factory=list)
    cross_modal: list[str] = Field(default_factory=list, description="correspondences across modalities")
    mask_value: int | None = Field(None, ge=1, description="conventional value in label-map masks")
    z_continuous: bool = Field(True, description="one object spans adjacent slices without gaps")

    @field_validator("code")
    @classmethod
    def _upper_snake(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError(f"label codes are UPPER_SNAKE (e.g. LUNG_LEFT), got {value!r}")
        return value

    @model_validator(mode="after")
    def _level(self) -> LabelNode:
        if self.level is None and self.category is not Category.ATTRIBUTE:
            raise ValueError(f"label {self.code}: only attribute labels may omit the level")
        names = [a.name for a in self.attributes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"label {self.code}: attribute names repeat: {dupes}")
        return self

    def attribute(self, name: str) -> AttributeSchema | None:
        """The schema of attribute ``name``."""
        return next((a for a in self.attributes if a.name == name), None)


class Taxonomy(_Model):
    """A versioned label taxonomy (001 §8.2, §10.1.3)."""

    name: str = Field(min_length=1)
    version: str
    description: str = ""
    labels: list[LabelNode]

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError(f"taxonomy versions are MAJOR.MINOR[.PATCH], got {value!r}")
        return value

    @model_validator(mode="after")
    def _tree(self) -> Taxonomy:
        codes = [n.code for n in self.labels]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"label codes must be unique, repeated: {dupes}")
        by_code = {n.code: n for n in self.labels}
        for node in self.labels:
            if node.parent is None:
                continue
            parent = by_code.get(node.parent)
            if parent is None:
                raise ValueError(f"label {node.code}: parent {node.parent!r} is not in the taxonomy")
            if node.level and parent.level and LEVEL_DEPTH[node.level] <= LEVEL_DEPTH[parent.level]:
                raise ValueError(
                    f"label {node.code} ({node.level.value}) must be below its parent "
                    f"{parent.code} ({parent.level.value})"
                )
            seen = {node.code}
            walk: LabelNode | None = parent
            while walk is not None:
                if walk.code in seen:
                    raise ValueError(f"label {node.code}: parent chain loops through {walk.code}")
                seen.add(walk.code)
                walk = by_code.get(walk.parent) if walk.parent else None
        return self

    def get(self, code: str) -> LabelNode | None:
        """The label with ``code``."""
        return self._index().get(code)

    def _index(self) -> dict[str, LabelNode]:
        return {n.code: n for n in self.labels}

    def codes(self) -> list[str]:
        """Every label code, in file order."""
        return [n.code for n in self.labels]

    def children(self, code: str) -> list[LabelNode]:
        """Direct children of ``code``."""
        return [n for n in self.labels if n.parent == code]

    def path(self, code: str) -> list[LabelNode]:
        """Root-to-label chain of ``code``."""
        index = self._index()
        node = index.get(code)
        if node is None:
            raise InvalidInputError(f"label {code!r} is not in taxonomy {self.name} {self.version}")
        chain = [node]
        while chain[-1].parent:
            chain.append(index[chain[-1].parent])
        return chain[::-1]

    def check_attributes(self, code: str, attributes: dict[str, Any]) -> list[tuple[str, str]]:
        """``(attribute, problem)`` for every attribute of ``code`` that fails its schema.

        Missing required attributes and attributes the label does not define are problems too.
        """
        node = self.get(code)
        if node is None:
            return []
        problems = []
        for schema in node.attributes:
            if schema.name not in attributes:
                if schema.required:
                    problems.append((schema.name, "required attribute is missing"))
                continue
            msg = schema.check(attributes[schema.name])
            if msg:
                problems.append((schema.name, msg))
        known = {a.name for a in node.attributes}
        problems += [
            (name, f"attribute is not defined for {code} in the taxonomy") for name in attributes if name not in known
        ]
        return problems


def _validate(obj: Any, where: str) -> Taxonomy:
    try:
        return Taxonomy.model_validate(obj)
    except ValidationError as err:
        raise SchemaError(
            f"invalid taxonomy:\n{validation_message(err)}",
            where=where,
            hint="see `aimd annotation schema --model taxonomy`",
        ) from None


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a taxonomy JSON file; problems raise :class:`SchemaError` naming the field.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.json"
    >>> _ = p.write_text('{"name": "t", "version": "1.0", "labels": [{"code": "lung", '
    ...                  '"name_en": "Lung", "category": "organ", "level": "organ", "definition": "x"}]}')
    >>> try:
    ...     load_taxonomy(p)
    ... except SchemaError as e:
    ...     print("UPPER_SNAKE" in str(e))
    True
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("taxonomy file does not exist", where=str(p), hint="pass a taxonomy .json file")
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid UTF-8 JSON: {err}", where=str(p), hint="fix the JSON syntax") from None
    return _validate(obj, str(p))


@lru_cache(maxsize=1)
def _default_text() -> str:
    return resources.files("aimd.annotation").joinpath("data/taxonomy_default.json").read_text("utf-8")


def default_taxonomy() -> Taxonomy:
    """The built-in taxonomy covering the phantom's organs and lesions.

    Example
    -------
    >>> default_taxonomy().get("LIVER").mask_value
    3
    """
    return _validate(json.loads(_default_text()), "aimd/annotation/data/taxonomy_default.json")


def taxonomy_json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Taxonomy`, generated from the models."""
    return Taxonomy.model_json_schema()
