"""Read one phantom case folder into what simulated readers annotate (images, truth, text, fields).

The package parts every reader shares come from here: the CT and radiograph :class:`ImageRef` s with
their files, the report texts with span ids and semantic types (001 §8.5.2.2) and the de-identified
structured clinical fields with units, ranges, timestamps and time-deviation labels (001 §8.5.3).
Names, ID numbers, phone numbers and addresses in ``clinical.json`` are never copied.

Example
-------
>>> import tempfile, pathlib, json
>>> from aimd.phantoms import generate_dataset
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> index = generate_dataset(out, cases=1, seed=0, size=32, workers=1)
>>> case = read_phantom_case(out, index["cases"][0], index)
>>> case.ct.modality, case.ct.shape, case.dx.shape[2]
('CT', (32, 32, 32), 1)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from aimd.annotation.masks import ref_from_volume
from aimd.annotation.schema import (
    FieldType,
    FileRef,
    FileRole,
    ImageRef,
    StructuredField,
    TextDocument,
    TextSpan,
)
from aimd.core.errors import InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.volume import Volume

__all__ = ["PhantomCaseInputs", "read_phantom_case", "structured_fields", "text_documents"]


@dataclass
class PhantomCaseInputs:
    """Everything a simulated reader needs from one phantom case."""

    case_id: str
    case_dir: Path
    ct: ImageRef
    dx: ImageRef
    grid: Volume  # CT grid (array = label map)
    labels: NDArray[np.uint8]
    instances: NDArray[np.uint8]
    lesions: list[dict[str, Any]]
    dx_boxes: dict[str, dict[str, Any]]
    report: dict[str, Any]
    clinical: dict[str, Any]
    label_codes: dict[int, str]

    @property
    def voxel_ml(self) -> float:
        """Volume of one CT voxel in mL."""
        return float(np.prod(self.grid.spacing)) / 1000.0


def _json(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError(
            "phantom case file is missing", where=str(path), hint="regenerate the dataset with `aimd data phantom`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _acquired(ds: pydicom.Dataset) -> dt.datetime | None:
    date = str(ds.get("AcquisitionDate") or ds.get("StudyDate") or "")
    time = str(ds.get("AcquisitionTime") or ds.get("StudyTime") or "000000").split(".")[0].ljust(6, "0")
    if len(date) != 8:
        return None
    return dt.datetime.strptime(date + time[:6], "%Y%m%d%H%M%S")


def read_phantom_case(dataset_dir: Path, entry: dict[str, Any], index: dict[str, Any]) -> PhantomCaseInputs:
    """Load one case of a phantom dataset (``entry`` from dataset.json ``cases``)."""
    case_id = str(entry["id"])
    case_dir = dataset_dir / "cases" / case_id
    ct_files = sorted((case_dir / "ct").glob("*.dcm"))
    if not ct_files:
        raise InvalidInputError(
            "CT DICOM series is missing",
            where=str(case_dir / "ct"),
            hint="regenerate the dataset with `aimd data phantom`",
        )
    head = pydicom.dcmread(ct_files[0], stop_before_pixels=True)
    geo = entry["geometry"]
    z, y, x = geo["shape"]
    ct = ImageRef(
        uid=str(head.SeriesInstanceUID),
        modality="CT",
        shape=(x, y, z),
        spacing=tuple(geo["spacing"]),
        origin=tuple(geo["origin"]),
        direction=geo["direction"],
        case_id=case_id,
        study_uid=str(head.StudyInstanceUID),
        series_uid=str(head.SeriesInstanceUID),
        frame_of_reference_uid=str(head.get("FrameOfReferenceUID", "")) or None,
        acquired=_acquired(head),
        files=[FileRef(path="../ct.nii.gz", role=FileRole.IMAGE), FileRef(path="../ct", role=FileRole.DICOM_SERIES)],
    )
    dx_vol = read_volume(case_dir / "dx.dcm")
    dx_head = pydicom.dcmread(case_dir / "dx.dcm", stop_before_pixels=True)
    dx = ref_from_volume(
        dx_vol,
        str(dx_head.SeriesInstanceUID),
        case_id=case_id,
        study_uid=str(dx_head.StudyInstanceUID),
        series_uid=str(dx_head.SeriesInstanceUID),
        acquired=_acquired(dx_head),
        files=[FileRef(path="../dx.dcm", role=FileRole.IMAGE)],
    )
    labels = read_volume(case_dir / "labels.nii.gz")
    instances = read_volume(case_dir / "lesions.nii.gz")
    grid = Volume(
        np.asarray(labels.array, np.uint8),
        spacing=ct.spacing,
        origin=ct.origin,
        direction=np.asarray(ct.direction),
        modality="SEG",
    )
    boxes = {b["lesion_id"]: b for b in _json(case_dir / "dx_boxes.json")["boxes"]}
    return PhantomCaseInputs(
        case_id=case_id,
        case_dir=case_dir,
        ct=ct,
        dx=dx,
        grid=grid,
        labels=grid.array,
        instances=np.asarray(instances.array, np.uint8),
        lesions=_json(case_dir / "lesions.json")["lesions"],
        dx_boxes=boxes,
        report=_json(case_dir / "report.json"),
        clinical=_json(case_dir / "clinical.json"),
        label_codes={int(k): str(v) for k, v in index["label_codes"].items()},
    )


def text_documents(case: PhantomCaseInputs) -> list[TextDocument]:
    """The English and Chinese reports with their spans (001 §8.5.2.2)."""
    docs = []
    for lang in ("en", "zh"):
        rep = case.report.get(lang)
        if not rep:
            continue
        source = f"../report_{lang}.txt" if (case.case_dir / f"report_{lang}.txt").is_file() else None
        spans = [
            TextSpan(
                id=s["id"],
                start=s["start"],
                end=s["end"],
                text=s["text"],
                semantic_type=s["type"],
                attribute=s.get("attribute"),
            )
            for s in rep["spans"]
        ]
        docs.append(
            TextDocument(
                id=f"report_{lang}", kind="report", language=lang, text=rep["text"], spans=spans, source_file=source
            )
        )
    return docs


def structured_fields(
    case: PhantomCaseInputs,
    *,
    unlabel: set[str] = frozenset(),  # type: ignore[assignment]
    gap_days: int = 90,
) -> list[StructuredField]:
    """Lab values (LOINC, unit, range, date, time-deviation label) and non-identifying case fields.

    ``unlabel`` names lab codes whose time-deviation label a careless reader forgets.
    """
    c = case.clinical
    fields = [
        StructuredField(
            id="AGE",
            name="age",
            value=int(c["age"]),
            value_type=FieldType.INTEGER,
            unit="year",
            description="age at the CT scan",
        ),
        StructuredField(
            id="SEX", name="sex", value=str(c["sex"]), value_type=FieldType.ENUM, allowed_values=["M", "F"]
        ),
        StructuredField(
            id="SMOKING_STATUS",
            name="smoking.status",
            value=str(c["smoking"]["status"]),
            value_type=FieldType.ENUM,
            allowed_values=["never", "former", "current"],
        ),
    ]
    for lab in c.get("labs", []):
        stale = abs(int(lab["days_from_scan"])) > gap_days
        rng = lab.get("normal_range") or {}
        fields.append(
            StructuredField(
                id=f"LAB_{lab['code']}",
                name=lab["name_en"],
                value=float(lab["value"]),
                value_type=FieldType.NUMBER,
                unit=lab["unit"],
                normal_range={"low": rng.get("low"), "high": rng.get("high")},
                timestamp=dt.date.fromisoformat(lab["measured_date"]),
                code=lab.get("loinc"),
                code_system="LOINC",
                time_deviation=stale and lab["code"] not in unlabel,
            )
        )
    return fields
