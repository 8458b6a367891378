"""External validator (dicom3tools' dciodvfy): test fixtures and converted series are valid DICOM.

The geometry tests trust that a synthetic series is defective only where a test makes it so;
dciodvfy confirms the clean fixtures are valid CT/MR image objects. ``aimd data convert`` output
(NIfTI → DICOM) must also validate and keep every voxel's position.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from nibabel.testing import data_path

pytestmark = pytest.mark.integration

DCIODVFY = shutil.which("dciodvfy")


def _synth() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "unit" / "test_imaging_synth.py"
    spec = importlib.util.spec_from_file_location("aimd_test_imaging_synth", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _errors(path: Path) -> list[str]:
    if DCIODVFY is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed")
    proc = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_synthetic_fixtures_are_valid_dicom(modality: str, tmp_path: Path) -> None:
    intercept = -1024.0 if modality == "CT" else 0.0
    synth = _synth().write_series(tmp_path, n=2, modality=modality, intercept=intercept)
    for path in synth.paths:
        assert _errors(path) == [], path


def test_converted_series_is_valid_and_keeps_geometry(tmp_path: Path) -> None:
    synth = _synth()
    src = Path(data_path) / "anatomical.nii"
    out = tmp_path / "anat"
    cmd = [sys.executable, "-m", "aimd.cli.main", "data", "convert", str(src), str(out), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.iterdir())
    assert len(files) == 25
    for path in (files[0], files[-1]):
        assert _errors(path) == [], path
    from aimd.imaging.io import read_volume

    synth.assert_matches_sitk(read_volume(src), synth.sitk_series(out))
