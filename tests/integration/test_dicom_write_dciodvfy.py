"""DICOM files aimd writes pass dciodvfy (dicom3tools) without a single error line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aimd.imaging.dicom_write import DicomMeta, write_dicom_image, write_dicom_series
from aimd.imaging.volume import Volume
from aimd.phantoms import generate_dataset

DCIODVFY = shutil.which("dciodvfy")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) is not installed"),
]


def _verify(path: Path) -> list[str]:
    proc = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert lines, f"dciodvfy printed nothing for {path}"
    return lines


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dciodvfy") / "ds"
    generate_dataset(out, cases=1, seed=3, size=32, workers=1)
    return out / "cases" / "case_0001"


def test_phantom_ct_slice_has_no_errors(case: Path) -> None:
    lines = _verify(case / "ct" / "IM00016.dcm")
    assert lines[0].strip() == "CTImage"
    assert [ln for ln in lines if ln.startswith("Error")] == []
    assert [ln for ln in lines if ln.startswith("Warning")] == []


def test_phantom_dx_has_no_errors(case: Path) -> None:
    lines = _verify(case / "dx.dcm")
    assert lines[0].strip() == "DXImageForPresentation"
    assert [ln for ln in lines if ln.startswith("Error")] == []
    assert [ln for ln in lines if ln.startswith("Warning")] == []


def test_default_meta_files_have_no_errors(tmp_path: Path) -> None:
    """What ``aimd data convert`` writes: only defaults, no patient or study attributes given."""
    oblique = np.array([[0.8, -0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])
    ct = Volume(np.full((3, 8, 8), -1000, np.int16), spacing=(0.7, 0.7, 3.0), direction=oblique, modality="CT")
    mr = Volume(np.linspace(0, 1, 3 * 8 * 8, dtype=np.float32).reshape(3, 8, 8), modality="MR")
    paths = [
        write_dicom_series(ct, tmp_path / "ct")[1],
        write_dicom_series(mr, tmp_path / "mr")[1],
        write_dicom_image(np.zeros((8, 8), np.uint16), tmp_path / "dx.dcm", pixel_spacing=(0.2, 0.2), meta=DicomMeta()),
    ]
    for path in paths:
        errors = [ln for ln in _verify(path) if ln.startswith("Error")]
        assert errors == [], (path.name, errors)
