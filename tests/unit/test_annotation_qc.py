"""Level-1 QC: each finding on a purpose-built defective package (001 §6.5.1, §9.3.1 a, §8.4, §8.5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_annotation_builders import clean_package, codes, lesion_mask, load, organ_map, qc, save

from aimd.annotation import QCConfig, check_package, default_template
from aimd.annotation.qc.geometry import out_of_bounds_voxels
from aimd.core.hashing import sha256_file
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.imaging.volume import Volume

Mutation = Callable[[Path, dict[str, Any]], None]


def _ann(data: dict[str, Any], ann_id: str) -> dict[str, Any]:
    return next(a for a in data["annotations"] if a["id"] == ann_id)


def _rewrite_mask(tmp: Path, name: str, array: np.ndarray, **geometry: Any) -> None:
    path = tmp / "ann/reader_1/masks" / name
    ref = read_nifti(path)
    write_nifti(
        Volume(
            array,
            spacing=geometry.get("spacing", ref.spacing),
            origin=geometry.get("origin", ref.origin),
            direction=geometry.get("direction", ref.direction),
        ),
        path,
    )


def _hole(tmp: Path, data: dict[str, Any]) -> None:
    labels = organ_map()
    labels[4, 7, 7] = 0  # one background voxel enclosed by the lung in slice 4
    _rewrite_mask(tmp, "organs.nii.gz", labels)


def _gap(tmp: Path, data: dict[str, Any]) -> None:
    m = np.zeros_like(lesion_mask())
    m[1:3, 6:9, 6:9] = 1
    m[5:7, 6:9, 6:9] = 1
    _rewrite_mask(tmp, "lesion_01.nii.gz", m)


def _jump(tmp: Path, data: dict[str, Any]) -> None:
    m = np.zeros_like(lesion_mask())
    m[2:4, 5:8, 5:8] = 1
    m[4:6, 5:8, 10:13] = 1  # slice 4 drawn 5 voxels (4 mm) to the side
    _rewrite_mask(tmp, "lesion_01.nii.gz", m)


def _stray_value(tmp: Path, data: dict[str, Any]) -> None:
    labels = organ_map()
    labels[0, 3, 3] = 7
    _rewrite_mask(tmp, "organs.nii.gz", labels)


def _set(path: str, value: Any) -> Mutation:
    def apply(tmp: Path, data: dict[str, Any]) -> None:
        keys = path.split(".")
        target: Any = data
        for k in keys[:-1]:
            if isinstance(target, list):
                target = target[int(k)] if k.isdigit() else next(a for a in target if a["id"] == k)
            else:
                target = target[k]
        target[int(keys[-1]) if isinstance(target, list) else keys[-1]] = value

    return apply


CASES: list[tuple[str, Mutation, str, str]] = [
    ("hole", _hole, "MASK_HOLES", "error"),
    ("slice gap", _gap, "MASK_SLICE_GAP", "error"),
    ("slice jump", _jump, "MASK_SLICE_JUMP", "error"),
    ("value not in label map", _stray_value, "MASK_VALUE_NOT_IN_LABEL_MAP", "error"),
    (
        "empty mask",
        lambda t, d: _rewrite_mask(t, "lesion_01.nii.gz", np.zeros_like(lesion_mask())),
        "MASK_EMPTY",
        "error",
    ),
    (
        "label map names another label",
        lambda t, d: d["label_maps"]["reader_1/masks/organs.nii.gz"].update({"2": "LIVER"}),
        "LABEL_MAP_MISMATCH",
        "error",
    ),
    ("bbox outside", _set("annotations.BOX_01.data.bbox", [6, 6, 3, 9, 17, 6]), "BBOX_OUT_OF_BOUNDS", "error"),
    ("bbox inverted", _set("annotations.BOX_01.data.bbox", [9, 6, 3, 6, 9, 6]), "BBOX_INVALID", "error"),
    (
        "2-D box on a volume without slice",
        _set("annotations.BOX_01.data.bbox", [6, 6, 9, 9]),
        "BBOX_SLICE_MISSING",
        "error",
    ),
    ("unknown image uid", _set("annotations.BOX_01.image_uid", "7.7.7"), "ANNOTATION_IMAGE_UNKNOWN", "error"),
    (
        "label not in taxonomy",
        _set("annotations.LES_01.label_code", "LUNG_TUMOUR_XL"),
        "LABEL_NOT_IN_TAXONOMY",
        "error",
    ),
    ("category mismatch", _set("annotations.ORG_LUNG.category", "lesion"), "LABEL_CATEGORY_MISMATCH", "error"),
    ("enum value", _set("annotations.LES_01.data.attributes.margin", "fuzzy"), "ATTRIBUTE_INVALID", "error"),
    ("range", _set("annotations.LES_01.data.attributes.diameter_mm", 0.2), "ATTRIBUTE_INVALID", "error"),
    ("unknown attribute", _set("annotations.LES_01.data.attributes.colour", "red"), "ATTRIBUTE_UNKNOWN", "warning"),
    ("dangling link", _set("annotations.LES_01.cross_modal_links", ["S_NOWHERE"]), "LINK_DANGLING", "error"),
    (
        "link kind",
        _set("annotations.LES_01.cross_modal_links", [{"target": "LAB_CEA", "kind": "image_text"}]),
        "LINK_KIND_MISMATCH",
        "error",
    ),
    ("duplicate id", _set("annotations.BOX_01.id", "LES_01"), "DUPLICATE_ID", "error"),
    ("span offsets", _set("texts.0.spans.1.start", 3), "TEXT_SPAN_MISMATCH", "error"),
    (
        "marked inconsistent",
        _set(
            "annotations.LES_01.cross_modal_links",
            [{"target": "S_MARGIN", "status": "inconsistent", "note": "margin looks ill-defined"}],
        ),
        "IMAGE_TEXT_INCONSISTENT",
        "warning",
    ),
    (
        "conflict not marked",
        _set("annotations.LES_01.data.attributes.margin", "ill_defined"),
        "IMAGE_TEXT_CONFLICT_UNMARKED",
        "error",
    ),
    (
        "lab 120 days old, no label",
        _set("structured_fields.0.timestamp", "2022-10-06"),
        "CLINICAL_TIME_GAP_UNLABELLED",
        "error",
    ),
    (
        "time label without gap",
        _set("structured_fields.0.time_deviation", True),
        "TIME_DEVIATION_LABEL_UNNEEDED",
        "warning",
    ),
    ("numeric field without unit", _set("structured_fields.0.unit", None), "FIELD_UNIT_MISSING", "warning"),
    ("registration error 4 mm", _set("registrations.0.error.value", 4.0), "REGISTRATION_ERROR_HIGH", "error"),
    ("registration without error", _set("registrations.0.error", None), "REGISTRATION_ERROR_MISSING", "error"),
    (
        "registration similarity only",
        _set("registrations.0.error", {"metric": "mattes_mutual_information", "value": -0.8}),
        "REGISTRATION_ERROR_NOT_DISTANCE",
        "warning",
    ),
    (
        "registration image unknown",
        _set("registrations.0.moving_image", "5.5.5"),
        "REGISTRATION_IMAGE_UNKNOWN",
        "error",
    ),
    ("missing file", lambda t, d: (t / "ann/reader_1/transforms/ct_to_pet.tfm").unlink(), "FILE_MISSING", "error"),
    (
        "orphan file",
        lambda t, d: (t / "ann/reader_1/masks/old_draft.nii.gz").write_bytes(b"x"),
        "FILE_UNREFERENCED",
        "warning",
    ),
    (
        "model output uncorrected",
        _set("annotations.LES_01.provenance", {"source": "model", "model": "m 1"}),
        "MODEL_OUTPUT_UNCORRECTED",
        "error",
    ),
    (
        "model use unrecorded",
        _set("annotations.LES_01.provenance", {"source": "model_corrected"}),
        "MODEL_ASSIST_UNRECORDED",
        "error",
    ),
    ("audit edited", _set("metadata.audit.0.actor", "someone_else"), "AUDIT_CHAIN_BROKEN", "error"),
    (
        "audit without hashes",
        _set("metadata.audit", [{"timestamp": "2025-01-01T00:00:00Z", "actor": "a", "action": "create"}]),
        "AUDIT_CHAIN_BROKEN",
        "error",
    ),
    ("image geometry stated wrong", _set("image.origin", [-6.0, -6.0, -90.0]), "IMAGE_GEOMETRY_MISMATCH", "error"),
    ("value 10^400", _set("structured_fields.0.value", 10**400), "FIELD_VALUE_OUT_OF_RANGE", "error"),
    ("control character in task id", _set("task_id", "TASK\x1b[2J"), "ID_CONTROL_CHARACTER", "error"),
    ("newline in annotation id", _set("annotations.LES_01.id", "LES\n01"), "ID_CONTROL_CHARACTER", "error"),
]


@pytest.mark.parametrize(("name", "mutate", "code", "severity"), CASES, ids=[c[0] for c in CASES])
def test_each_defect_gives_its_finding(tmp_path: Path, name: str, mutate: Mutation, code: str, severity: str) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    mutate(tmp_path, data)
    save(path, data)
    findings = qc(path)
    hits = [f for f in findings if f.code == code]
    assert hits, f"{name}: expected {code}, got {sorted(codes(findings))}"
    assert {f.severity.value for f in hits} == {severity}
    assert all(f.clause.startswith("001 §") for f in findings)
    assert all(f.location["package"] == str(path) for f in hits)


def test_mask_geometry_mismatches_are_named_by_field(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    lesion = lesion_mask()
    _rewrite_mask(tmp_path, "lesion_01.nii.gz", lesion, spacing=(0.8, 0.8, 2.5))
    flipped = np.diag([1.0, -1.0, 1.0])
    _rewrite_mask(tmp_path, "organs.nii.gz", organ_map(), direction=flipped)
    found = {(f.code, f.location.get("file")) for f in qc(path)}
    assert ("MASK_SPACING_MISMATCH", "reader_1/masks/lesion_01.nii.gz") in found
    assert ("MASK_DIRECTION_MISMATCH", "reader_1/masks/organs.nii.gz") in found


def test_shifted_mask_counts_out_of_bounds_voxels(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    m = np.zeros((8, 16, 16), np.uint8)
    m[2:5, 2:14, 10:16] = 1  # touches the right edge, then shifted 4 voxels (3.2 mm) further right
    _rewrite_mask(tmp_path, "lesion_01.nii.gz", m, origin=(-6.0 + 3.2, -6.0, -100.0))
    findings = qc(path)
    oob = [f for f in findings if f.code == "MASK_OUT_OF_BOUNDS"]
    # independent count: voxels whose shifted column index i + 4 reaches 16 or beyond
    cols = np.nonzero(m)[2]
    assert oob and oob[0].location["voxels"] == int(np.count_nonzero(cols + 4 >= 16))
    assert "MASK_ORIGIN_MISMATCH" in codes(findings)
    image = Volume(np.zeros((8, 16, 16)), spacing=(0.8, 0.8, 2.0), origin=(-6.0, -6.0, -100.0))
    shifted = Volume(m, spacing=(0.8, 0.8, 2.0), origin=(-6.0 + 3.2, -6.0, -100.0))
    assert out_of_bounds_voxels(shifted, image) == int(np.count_nonzero(cols + 4 >= 16))


def test_hole_count_and_slices(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    labels = organ_map()
    labels[4, 7, 7] = labels[4, 8, 7] = labels[5, 7, 8] = 0
    _rewrite_mask(tmp_path, "organs.nii.gz", labels)
    hole = next(f for f in qc(path) if f.code == "MASK_HOLES")
    assert hole.location["voxels"] == 3 and hole.location["slice"] == 4
    assert hole.location["annotation"] == "ORG_LUNG"


def test_gap_exempt_for_labels_that_are_interrupted_by_anatomy(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    _gap(tmp_path, {})
    data = load(path)
    for key, value in (("label_code", "SPINE_BONE"), ("category", "organ")):
        _ann(data, "LES_01")[key] = value
    _ann(data, "LES_01")["data"]["attributes"] = {}
    _ann(data, "LES_01")["cross_modal_links"] = []
    save(path, data)
    assert "MASK_SLICE_GAP" not in codes(qc(path))


def test_time_gap_threshold_is_exclusive_and_configurable(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["structured_fields"][0]["timestamp"] = "2022-11-05"  # 90 days before 2023-02-03
    save(path, data)
    assert "CLINICAL_TIME_GAP_UNLABELLED" not in codes(qc(path))
    assert "CLINICAL_TIME_GAP_UNLABELLED" in codes(qc(path, config=QCConfig(lab_gap_days=60)))
    data["structured_fields"][0]["timestamp"] = "2022-11-04"  # 91 days
    data["structured_fields"][0]["time_deviation"] = True
    save(path, data)
    assert "CLINICAL_TIME_GAP_LABELLED" in codes(qc(path), "info")


def test_registration_limit_follows_the_config(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["registrations"][0]["error"]["value"] = 4.0
    save(path, data)
    assert "REGISTRATION_ERROR_HIGH" in codes(qc(path))
    assert "REGISTRATION_ERROR_HIGH" not in codes(qc(path, config=QCConfig(registration_max_error_mm=5.0)))


def test_changed_file_fails_its_recorded_hash(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["image"]["files"][0]["sha256"] = sha256_file(tmp_path / "ct.nii.gz")
    save(path, data)
    assert "FILE_HASH_MISMATCH" not in codes(qc(path))
    raw = bytearray((tmp_path / "ct.nii.gz").read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "ct.nii.gz").write_bytes(bytes(raw))
    assert "FILE_HASH_MISMATCH" in codes(qc(path))


def test_template_rules(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    tpl = default_template()
    assert codes(qc(path, template=tpl), "error") == set()
    data = load(path)
    _ann(data, "BOX_01")["data"]["attributes"].pop("lobe")
    data["annotations"].append(json.loads(json.dumps(_ann(data, "ORG_LUNG"))) | {"id": "ORG_LUNG_2"})
    data["annotations"].append(
        {
            "id": "POLY",
            "category": "lesion",
            "label_code": "PNEUMONIA_GGO",
            "type": "polygon",
            "data": {"polygon": [[1, 1], [4, 1], [4, 20]], "slice_index": 2},
        }
    )
    save(path, data)
    found = codes(qc(path, template=tpl))
    assert {
        "TEMPLATE_ATTRIBUTE_MISSING",
        "TEMPLATE_COUNT_EXCEEDED",
        "TEMPLATE_LABEL_NOT_ALLOWED",
        "POLYGON_OUT_OF_BOUNDS",
    } <= found


def test_point_outside_and_polygon_slice(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["annotations"] += [
        {"id": "P1", "category": "landmark", "label_code": "LUNG", "type": "point", "data": {"point": [3, 3, 8.5]}},
        {
            "id": "P2",
            "category": "lesion",
            "label_code": "LUNG_NODULE",
            "type": "polygon",
            "data": {"polygon": [[1, 1], [4, 1], [4, 4]], "slice_index": 8},
        },
    ]
    save(path, data)
    found = {(f.code, f.location.get("annotation")) for f in qc(path)}
    assert ("POINT_OUT_OF_BOUNDS", "P1") in found and ("SLICE_OUT_OF_BOUNDS", "P2") in found


def test_age_written_as_1e400_is_a_finding(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    text = path.read_text()
    data = json.loads(text)
    data["structured_fields"][0]["value"] = 12345.0
    path.write_text(json.dumps(data).replace("12345.0", "1e400"))
    found = [f for f in check_package(path) if f.code == "FIELD_VALUE_OUT_OF_RANGE"]
    assert len(found) == 1 and found[0].is_error and "inf" in found[0].message
