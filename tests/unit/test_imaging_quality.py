"""Image-quality checks (001 §7.2 g): noise estimate, resolution, contrast, blurred and noisy slices."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.imaging.io import read_volume
from aimd.imaging.quality import check_quality, measure_quality, slice_noise
from aimd.imaging.volume import Volume

COLIN = Path("/usr/share/mricron/templates/ch2.nii.gz")


def _anatomy(shape: tuple[int, int, int] = (12, 128, 128)) -> np.ndarray:
    """Discs of different intensity, slowly changing along z (stands in for anatomy)."""
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    r = np.hypot(y - shape[1] / 2, x - shape[2] / 2)
    out = np.where(r < 50 - z, 300.0, 0.0) + np.where(np.hypot(y - 50, x - 70) < 15, 400.0, 0.0)
    return out.astype(np.float32)


@pytest.mark.parametrize("sigma", [2.0, 10.0, 40.0])
def test_noise_estimate_recovers_known_sigma(sigma: float) -> None:
    rng = np.random.default_rng(int(sigma))
    flat = rng.normal(0, sigma, (256, 256))
    assert slice_noise(flat) == pytest.approx(sigma, rel=0.05)
    edged = _anatomy((1, 256, 256))[0] + rng.normal(0, sigma, (256, 256))  # edges barely move the estimate
    assert slice_noise(edged) == pytest.approx(sigma, rel=0.15)


def test_clean_volume_has_no_findings_and_damaged_slices_are_named() -> None:
    rng = np.random.default_rng(0)
    arr = _anatomy() + rng.normal(0, 5, (12, 128, 128)).astype(np.float32)
    vol = Volume(arr, spacing=(0.8, 0.8, 1.5), modality="MR")
    assert check_quality(vol) == []
    damaged = arr.copy()
    damaged[4] = ndimage.gaussian_filter(damaged[4], 3.0)
    damaged[8] += rng.normal(0, 40, damaged[8].shape).astype(np.float32)
    found = {
        (f.code, f.location.get("slice"))
        for f in check_quality(Volume(damaged, spacing=(0.8, 0.8, 1.5), modality="MR"))
    }
    assert found == {("SLICE_BLURRED", 4), ("SLICE_NOISY", 8)}


def test_resolution_noise_and_constant_images() -> None:
    rng = np.random.default_rng(1)
    coarse = Volume(
        _anatomy((6, 64, 64)) + rng.normal(0, 2, (6, 64, 64)).astype(np.float32), spacing=(3.0, 3.0, 8.0), modality="CT"
    )
    assert {f.code for f in check_quality(coarse)} == {"LOW_RESOLUTION", "THICK_SLICES", "SMALL_MATRIX"}
    noisy_ct = Volume(
        _anatomy() + rng.normal(0, 100, (12, 128, 128)).astype(np.float32), spacing=(0.8, 0.8, 1.0), modality="CT"
    )
    codes = {f.code for f in check_quality(noisy_ct)}
    assert "HIGH_NOISE" in codes
    assert measure_quality(noisy_ct)["noise_sigma"] == pytest.approx(100, rel=0.1)
    weak_mr = Volume(
        _anatomy() / 300 * 2 + rng.normal(0, 1, (12, 128, 128)).astype(np.float32),
        spacing=(0.8, 0.8, 1.0),
        modality="MR",
    )
    assert {"LOW_SNR", "LOW_CONTRAST"} <= {f.code for f in check_quality(weak_mr)}
    blank = check_quality(Volume(np.zeros((3, 128, 128), np.int16)))
    assert [(f.code, f.severity.value) for f in blank] == [("IMAGE_CONSTANT", "error")]


@pytest.mark.skipif(not COLIN.is_file(), reason="Debian mricron-data is not installed")
def test_real_brain_passes_and_a_blurred_slice_is_found() -> None:
    vol = read_volume(COLIN)
    assert check_quality(vol) == []
    arr = vol.array.astype(np.float32).copy()
    arr[90] = ndimage.gaussian_filter(arr[90], 3.0)
    found = [
        (f.code, f.location.get("slice"))
        for f in check_quality(
            Volume(arr, spacing=vol.spacing, origin=vol.origin, direction=vol.direction, modality="MR")
        )
    ]
    assert found == [("SLICE_BLURRED", 90)]


def test_validate_cli_reports_quality_unless_switched_off(tmp_path: Path) -> None:
    arr = _anatomy() + np.random.default_rng(2).normal(0, 5, (12, 128, 128)).astype(np.float32)
    arr[6] = ndimage.gaussian_filter(arr[6], 3.0)
    path = tmp_path / "mr.nii.gz"
    nib.save(nib.Nifti1Image(np.transpose(arr, (2, 1, 0)), np.diag([0.8, 0.8, 1.5, 1.0])), path)
    runner = CliRunner()
    res = runner.invoke(app, ["data", "validate", str(path), "--json"])
    assert res.exit_code == 0, res.output  # warnings only
    codes = [(f["code"], f["clause"]) for f in json.loads(res.stdout)["findings"]]
    assert ("SLICE_BLURRED", "001 §7.2 g") in codes
    res = runner.invoke(app, ["data", "validate", str(path), "--no-quality", "--json"])
    assert all(f["clause"] != "001 §7.2 g" for f in json.loads(res.stdout)["findings"])
