"""De-identified DICOM stays valid (001 §7.3: "应不影响诊断和空间定位信息"): dicom3tools' dciodvfy finds
no error in a de-identified object that it did not find in the original."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from aimd.imaging.deid import DeidMap, ProfileOptions, deidentify_dicom_file
from aimd.phantoms import generate_dataset

pytestmark = pytest.mark.integration

DCIODVFY = shutil.which("dciodvfy")


def _errors(path: Path) -> set[str]:
    if DCIODVFY is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    proc = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    lines = (proc.stdout + proc.stderr).splitlines()
    # the message without the value dump, so an error on a changed value still compares equal
    return {line.split(" - ")[1] if " - " in line else line for line in lines if line.startswith("Error")}


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtdose.dcm", "SC_rgb.dcm"])
def test_bundled_files_gain_no_dciodvfy_error(name: str, tmp_path: Path) -> None:
    src = Path(str(get_testdata_file(name, download=False)))
    out = tmp_path / name
    deidentify_dicom_file(src, out, DeidMap.new("dciodvfy"), ProfileOptions(), max_shift_days=90)
    assert _errors(out) <= _errors(src)


def test_phantom_ct_and_radiograph_validate_after_deid(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "p", cases=1, seed=3, size=32, workers=1)
    mapping = DeidMap.new("dciodvfy")
    root = tmp_path / "p"
    sources = [*sorted(root.glob("cases/*/ct/*.dcm"))[:2], *root.glob("cases/*/dx.dcm")]
    for src in sources:
        out = tmp_path / "out" / src.name
        deidentify_dicom_file(src, out, mapping, ProfileOptions(), max_shift_days=90)
        assert _errors(out) == set(), src.name
