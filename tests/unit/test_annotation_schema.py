"""Package schema (001 App. C), JSON / JSON Lines reading with clear errors, generated JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from test_annotation_builders import clean_package, load, save

from aimd.annotation import (
    AnnotationPackage,
    append_audit,
    audit_chain_break,
    load_package,
    load_packages,
    package_json_schema,
    read_sources,
    save_packages_jsonl,
)
from aimd.core.errors import SchemaError

# the App. C.5 example, completed where the standard elides values ("...")
APP_C_EXAMPLE = {
    "task_id": "TASK_CT_LUNG_000001",
    "image": {
        "uid": "1.2.840.113619.2.55.3.604688234",
        "modality": "CT",
        "shape": [512, 512, 320],
        "spacing": [0.7, 0.7, 1.0],
        "origin": [-158.0, -158.0, -240.0],
    },
    "annotations": [
        {
            "id": "ORG_LUNG_LEFT",
            "category": "organ",
            "label_code": "LUNG_LEFT",
            "type": "mask",
            "mask_file": "masks/xxx.nii.gz",
        },
        {
            "id": "LESION_01",
            "category": "lesion",
            "label_code": "PNEUMONIA_GGO",
            "type": "bbox",
            "bbox": [100, 120, 30, 140, 160, 42],
            "cross_modal_links": ["TXT_SPAN_01"],
        },
    ],
    "metadata": {"annotator": "doctor_A", "reviewer": "doctor_B", "version": "v1.0"},
}


def test_app_c_example_is_read_with_payload_under_data() -> None:
    pkg = AnnotationPackage.model_validate(APP_C_EXAMPLE)
    assert pkg.annotations[0].data.mask_file == "masks/xxx.nii.gz"
    assert pkg.annotations[1].data.bbox == [100.0, 120.0, 30.0, 140.0, 160.0, 42.0]
    assert pkg.annotations[1].cross_modal_links[0].target == "TXT_SPAN_01"
    assert pkg.image.direction == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]


def test_generated_schema_accepts_real_packages_and_rejects_unknown_fields(tmp_path: Path) -> None:
    schema = package_json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    data = load(clean_package(tmp_path))
    assert list(validator.iter_errors(data)) == []
    data["annotations"][0]["colour"] = "red"
    errors = list(validator.iter_errors(data))
    assert errors and any("colour" in e.message for e in errors)


def test_unknown_field_names_file_and_field_path(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["annotations"][2]["data"]["colour"] = "red"
    save(path, data)
    with pytest.raises(SchemaError) as err:
        load_package(path)
    assert err.value.where == str(path)
    assert "annotations[2].data.colour" in err.value.message and "unknown field" in err.value.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d["annotations"][3]["data"].pop("bbox"), "annotations[3]", "needs data.bbox"),
        (lambda d: d["annotations"][3]["data"].update(bbox=[1, 2, 3]), "annotations[3].data.bbox", "4 (2-D) or 6"),
        (lambda d: d["image"].update(spacing=[0.8, 0, 2]), "image.spacing", "> 0 mm"),
        (lambda d: d["structured_fields"][0].update(value="high"), "structured_fields[0]", "not of type number"),
        (lambda d: d["texts"][0]["spans"][0].update(semantic_type="opinion"), "texts[0].spans[0].semantic_type", "got"),
        (lambda d: d["image"].update(files=[{"path": "/abs/ct.nii.gz"}]), "image.files[0].path", "relative"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, change, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    path = clean_package(tmp_path)
    data = load(path)
    change(data)
    save(path, data)
    with pytest.raises(SchemaError) as err:
        load_package(path)
    assert field in err.value.message and words in err.value.message


def test_json_lines_round_trip_and_line_numbers(tmp_path: Path) -> None:
    pkg = load_package(clean_package(tmp_path))
    other = pkg.model_copy(update={"task_id": "TASK_2"})
    jsonl = tmp_path / "ann" / "all.jsonl"
    save_packages_jsonl([pkg, other], jsonl)
    assert [p.task_id for p in load_packages(jsonl)] == ["TASK_TEST", "TASK_2"]
    assert [s.where.rsplit(":", 1)[1] for s in read_sources(jsonl)] == ["1", "2"]
    assert load_packages(jsonl)[0] == pkg
    lines = jsonl.read_text().splitlines()
    lines[1] = lines[1].replace('"task_id"', '"task"')
    jsonl.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError) as err:
        load_packages(jsonl)
    assert err.value.where == f"{jsonl}:2"


def test_broken_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{\n  "task_id": "T",\n  "image": {,}\n}\n')
    with pytest.raises(SchemaError) as err:
        load_package(path)
    assert "line 3 column" in err.value.message


def test_audit_chain_detects_removal_and_reordering(tmp_path: Path) -> None:
    pkg = load_package(clean_package(tmp_path))
    for action in ("model_suggestion", "manual_revision", "review"):
        pkg = append_audit(pkg, actor="x", action=action)
    trail = pkg.metadata.audit
    assert audit_chain_break(trail) is None
    assert audit_chain_break([trail[0], trail[2], trail[3]]) == 1
    assert audit_chain_break([trail[1], trail[0], trail[2], trail[3]]) == 0
    assert json.loads(pkg.model_dump_json())["metadata"]["audit"][3]["prev_sha256"] == trail[2].sha256
    unchained = [e.model_copy(update={"sha256": None, "prev_sha256": None}) for e in trail]
    assert audit_chain_break(unchained) == 0
