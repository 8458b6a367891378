"""Small hand-built packages for the annotation tests (imported by the other test_annotation_* files).

``clean_package(tmp)`` writes a 16×16×8 CT (NIfTI), an organ label map, one lesion mask, a report
with spans, lab fields and a registration, all consistent: level-1 QC finds no error in it. Tests
then break one thing on purpose and expect the one finding that names it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from aimd.annotation import (
    AnnotationPackage,
    PackageSource,
    append_audit,
    new_package,
    run_qc,
    save_package,
    write_mask,
)
from aimd.core.findings import Finding
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume

SHAPE_ZYX = (8, 16, 16)
SPACING = (0.8, 0.8, 2.0)
ORIGIN = (-6.0, -6.0, -100.0)
REPORT = "A solid nodule with well-defined margins, 4 mm, in the right upper lobe."


def _ct() -> Volume:
    rng = np.random.default_rng(0)
    arr = (rng.normal(-800, 20, SHAPE_ZYX)).astype(np.int16)
    return Volume(arr, spacing=SPACING, origin=ORIGIN, modality="CT")


def organ_map() -> np.ndarray:
    """LUNG (2) block with a BODY (1) shell."""
    labels = np.zeros(SHAPE_ZYX, np.uint8)
    labels[:, 2:14, 2:14] = 1
    labels[1:7, 4:12, 4:12] = 2
    return labels


def lesion_mask() -> np.ndarray:
    """A 3×3×3 nodule inside the lung block."""
    m = np.zeros(SHAPE_ZYX, np.uint8)
    m[3:6, 6:9, 6:9] = 1
    return m


def clean_package(tmp: Path) -> Path:
    """Write a consistent package (and its files) under ``tmp``; return the package path."""
    write_nifti(_ct(), tmp / "ct.nii.gz")
    path = tmp / "ann" / "reader_1.json"
    pkg = new_package(
        tmp / "ct.nii.gz",
        path,
        task_id="TASK_TEST",
        annotator="reader_1",
        uid="1.2.3.4",
        case_id="case_test",
        acquired=dt.datetime(2023, 2, 3, 10, 0),
    )
    write_mask(pkg.image, organ_map(), tmp / "ann/reader_1/masks/organs.nii.gz")
    write_mask(pkg.image, lesion_mask(), tmp / "ann/reader_1/masks/lesion_01.nii.gz")
    (tmp / "ann/reader_1/transforms").mkdir(parents=True)
    (tmp / "ann/reader_1/transforms/ct_to_pet.tfm").write_text("#Insight Transform File V1.0\n")
    start = REPORT.index("well-defined")
    data: dict[str, Any] = pkg.model_dump(mode="json", exclude_none=True)
    data["related_images"] = [
        {
            "uid": "9.9.9",
            "modality": "PT",
            "shape": [8, 8, 4],
            "spacing": [1.6, 1.6, 4.0],
            "origin": [-6.0, -6.0, -100.0],
        }
    ]
    data["label_maps"] = {"reader_1/masks/organs.nii.gz": {"1": "BODY", "2": "LUNG"}}
    data["annotations"] = [
        {
            "id": "ORG_BODY",
            "category": "organ",
            "label_code": "BODY",
            "type": "mask",
            "data": {"mask_file": "reader_1/masks/organs.nii.gz", "mask_value": 1},
        },
        {
            "id": "ORG_LUNG",
            "category": "organ",
            "label_code": "LUNG",
            "type": "mask",
            "data": {"mask_file": "reader_1/masks/organs.nii.gz", "mask_value": 2},
        },
        {
            "id": "LES_01",
            "category": "lesion",
            "label_code": "LUNG_NODULE",
            "type": "mask",
            "data": {
                "mask_file": "reader_1/masks/lesion_01.nii.gz",
                "attributes": {"density": "solid", "margin": "well_defined", "diameter_mm": 4, "lobe": "RUL"},
            },
            "cross_modal_links": [
                {"target": "S_MARGIN", "kind": "image_text", "status": "consistent"},
                {"target": "LAB_CEA", "kind": "image_structured"},
                "BOX_01",
            ],
        },
        {
            "id": "BOX_01",
            "category": "lesion",
            "label_code": "LUNG_NODULE",
            "type": "bbox",
            "data": {
                "bbox": [6, 6, 3, 9, 9, 6],
                "attributes": {"density": "solid", "margin": "well_defined", "diameter_mm": 4, "lobe": "RUL"},
            },
        },
        {
            "id": "CASE",
            "category": "attribute",
            "label_code": "CASE_LEVEL",
            "type": "attribute",
            "data": {"attributes": {"impression": "abnormal"}},
        },
    ]
    data["texts"] = [
        {
            "id": "report_en",
            "language": "en",
            "text": REPORT,
            "spans": [
                {"id": "S_FINDING", "start": 0, "end": len(REPORT), "text": REPORT, "semantic_type": "finding"},
                {
                    "id": "S_MARGIN",
                    "start": start,
                    "end": start + len("well-defined"),
                    "text": "well-defined",
                    "semantic_type": "attribute",
                    "attribute": "margin",
                },
            ],
        }
    ]
    data["structured_fields"] = [
        {
            "id": "LAB_CEA",
            "name": "CEA",
            "value": 2.1,
            "value_type": "number",
            "unit": "ng/mL",
            "normal_range": {"low": 0, "high": 5},
            "timestamp": "2023-01-20",
            "code": "2039-6",
            "code_system": "LOINC",
        }
    ]
    data["registrations"] = [
        {
            "id": "REG_1",
            "fixed_image": "1.2.3.4",
            "moving_image": "9.9.9",
            "transform_file": "reader_1/transforms/ct_to_pet.tfm",
            "algorithm": "rigid",
            "software": "SimpleITK",
            "software_version": "2.5",
            "error": {"metric": "tre_mm", "value": 1.2, "unit": "mm", "n_landmarks": 4},
        }
    ]
    data["metadata"]["reviewer"] = "reviewer_1"
    pkg = AnnotationPackage.model_validate(data)
    pkg = append_audit(pkg, actor="reader_1", action="create", timestamp=dt.datetime(2023, 2, 4, tzinfo=dt.UTC))
    save_package(pkg, path)
    return path


def load(path: Path) -> dict[str, Any]:
    """The package JSON as a dict."""
    return json.loads(path.read_text(encoding="utf-8"))


def save(path: Path, data: dict[str, Any]) -> None:
    """Write a (possibly broken on purpose) package dict."""
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def qc(path: Path, **kwargs: Any) -> list[Finding]:
    """Level-1 QC of the package at ``path``."""
    from aimd.annotation import read_sources

    return [f for s in read_sources(path) for f in run_qc(s, **kwargs)]


def codes(findings: list[Finding], severity: str | None = None) -> set[str]:
    """Codes of the findings (of one severity)."""
    return {f.code for f in findings if severity is None or f.severity.value == severity}


def source(path: Path) -> PackageSource:
    """The one package source in ``path``."""
    from aimd.annotation import read_sources

    return read_sources(path)[0]


def test_clean_package_has_no_errors_or_warnings(tmp_path: Path) -> None:
    findings = qc(clean_package(tmp_path))
    assert codes(findings, "error") == set()
    assert codes(findings, "warning") == set()


def simulated_dataset(root: Path, *, readers: int = 3, cases: int = 2, seed: int = 1, size: int = 64) -> Path:
    """A phantom dataset (cases with 1–3 lesions at seed 1) annotated by simulated readers."""
    from aimd.annotation import simulate_annotators
    from aimd.phantoms import generate_dataset

    out = root / "ph"
    generate_dataset(out, cases=cases, seed=seed, size=size, workers=1)
    simulate_annotators(out, readers, seed=0)
    return out


def expected(dataset: Path, case: str) -> dict[str, Any]:
    """The simulated readers' expected outcomes of one case."""
    return json.loads((dataset / "cases" / case / "annotations" / "expected.json").read_text(encoding="utf-8"))
