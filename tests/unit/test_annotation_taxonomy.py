"""Taxonomy and templates (001 §8.2, §8.3, §10.1.3, App. C.1): hierarchy, attribute schemas, version diffs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aimd.annotation import AttributeSchema, default_taxonomy, default_template, diff_taxonomies, load_taxonomy
from aimd.core.errors import SchemaError
from aimd.phantoms import LABEL_CODES, LESION_TYPES, generate_dataset


def _write(tmp: Path, obj: dict[str, Any]) -> Path:
    path = tmp / "tax.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _base() -> dict[str, Any]:
    return default_taxonomy().model_dump(mode="json", exclude_none=True)


def test_default_taxonomy_covers_every_phantom_label_and_lesion_type() -> None:
    tax = default_taxonomy()
    codes = set(tax.codes())
    phantom = {str(v) for k, v in dict(LABEL_CODES).items() if int(k) != 0}
    assert phantom <= codes
    for kind, spec in LESION_TYPES.items():
        node = tax.get(str(LABEL_CODES[spec["label"]]))
        assert node is not None and node.category.value == "lesion", kind
        assert node.mask_value == spec["label"]
    assert [n.level.value for n in tax.path("LUNG_NODULE")] == ["system", "organ", "feature"]
    assert {"LUNG_LEFT", "LUNG_RIGHT", "PNEUMONIA_GGO", "PNEUMONIA_CONSOLIDATION", "CASE_LEVEL"} <= codes


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda t: t["labels"].append(dict(t["labels"][1])), "unique"),
        (lambda t: t["labels"][1].update(code="Body"), "UPPER_SNAKE"),
        (lambda t: t["labels"][1].update(parent="NO_SUCH"), "not in the taxonomy"),
        (lambda t: t["labels"][0].update(parent="BODY"), "below its parent"),
        (lambda t: t["labels"][1].update(level=None), "only attribute labels"),
        (lambda t: t.update(version="v1"), "MAJOR.MINOR"),
        (lambda t: t["labels"][6]["attributes"][0].pop("values"), "needs values"),
    ],
)
def test_broken_taxonomies_are_rejected(tmp_path: Path, change, words: str) -> None:  # type: ignore[no-untyped-def]
    tax = _base()
    change(tax)
    with pytest.raises(SchemaError) as err:
        load_taxonomy(_write(tmp_path, tax))
    assert words in err.value.message


def test_parent_cycle_is_rejected(tmp_path: Path) -> None:
    tax = _base()
    for label in tax["labels"]:
        if label["code"] in ("LUNG_LEFT", "LUNG_RIGHT"):
            label["level"] = None
            label["category"] = "attribute"
    by_code = {lb["code"]: lb for lb in tax["labels"]}
    by_code["LUNG_LEFT"]["parent"] = "LUNG_RIGHT"
    by_code["LUNG_RIGHT"]["parent"] = "LUNG_LEFT"
    with pytest.raises(SchemaError, match="loops"):
        load_taxonomy(_write(tmp_path, tax))


def test_attribute_schemas() -> None:
    tax = default_taxonomy()
    ok = {"density": "solid", "margin": "ill_defined", "diameter_mm": 12, "lobe": "LLL", "segment": "S10"}
    assert tax.check_attributes("LUNG_NODULE", ok) == []
    bad = dict(
        tax.check_attributes("LUNG_NODULE", {**ok, "lobe": "LIVER_RIGHT", "diameter_mm": "12 mm", "texture": "x"})
    )
    assert set(bad) == {"lobe", "diameter_mm", "texture"}
    assert "required attribute is missing" in dict(tax.check_attributes("LIVER_TUMOUR", {}))["diameter_mm"]
    count = AttributeSchema(name="n", kind="integer", minimum=0)
    assert count.check(2.5) == "expected an integer, got 2.5" and count.check(True) is not None


def test_attribute_values_are_read_back_from_phantom_reports(tmp_path: Path) -> None:
    """Every attribute span of the phantom reports (English and Chinese) reads as the lesion's true value."""
    index = generate_dataset(tmp_path / "ph", cases=3, seed=2, size=48, workers=1)
    tax = default_taxonomy()
    checked = 0
    for case in index["cases"]:
        folder = tmp_path / "ph" / "cases" / case["id"]
        truth = {le["id"]: le for le in json.loads((folder / "lesions.json").read_text())["lesions"]}
        report = json.loads((folder / "report.json").read_text())
        for lang in ("en", "zh"):
            for span in report[lang]["spans"]:
                if span["type"] != "attribute":
                    continue
                lesion = truth[span["lesion_id"]]
                schema = tax.get(lesion["label_code"]).attribute(span["attribute"])
                assert schema.value_from_text(span["text"]) == pytest.approx(lesion[span["attribute"]]), span
                checked += 1
    assert checked >= 10


def test_diff_reports_changes_and_required_bump() -> None:
    old = default_taxonomy()
    new = _base()
    new["version"] = "1.1.0"
    nodule = next(lb for lb in new["labels"] if lb["code"] == "LUNG_NODULE")
    nodule["attributes"][0]["values"].append({"code": "cavitary", "en": "cavitary"})
    nodule["definition"] += " Seen on CT."
    new["labels"].append(
        {
            "code": "LUNG_MASS",
            "name_en": "Lung mass",
            "category": "lesion",
            "level": "feature",
            "parent": "LUNG",
            "definition": "A lung opacity larger than 30 mm.",
        }
    )
    d = diff_taxonomies(old, load_taxonomy_obj(new))
    kinds = {(c.kind, c.code, c.field) for c in d.changes}
    assert ("added", "LUNG_MASS", None) in kinds
    assert ("added", "LUNG_NODULE", "attributes.density.values") in kinds
    assert ("changed", "LUNG_NODULE", "definition") in kinds
    assert not d.breaking and d.required_bump == "minor" and d.version_bump_ok
    diameter = next(a for a in nodule["attributes"] if a["name"] == "diameter_mm")
    diameter["maximum"] = 30
    d2 = diff_taxonomies(old, load_taxonomy_obj(new))
    assert d2.breaking and d2.required_bump == "major" and not d2.version_bump_ok
    narrowed = next(c for c in d2.changes if c.field == "attributes.diameter_mm.maximum")
    assert (narrowed.old, narrowed.new, narrowed.breaking) == (100.0, 30.0, True)
    new["version"] = "2.0.0"
    assert diff_taxonomies(old, load_taxonomy_obj(new)).version_bump_ok


def load_taxonomy_obj(obj: dict[str, Any]):  # type: ignore[no-untyped-def]
    from aimd.annotation import Taxonomy

    return Taxonomy.model_validate(obj)


def test_default_template_fits_default_taxonomy() -> None:
    tpl = default_template()
    assert tpl.problems_with(default_taxonomy()) == []
    other = default_taxonomy().model_copy(update={"version": "9.0.0"})
    assert any("not aimd-default 9.0.0" in p for p in tpl.problems_with(other))
