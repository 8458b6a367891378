"""Windowing presets and per-modality normalisation (003 §2.2.1, §2.2.2)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from aimd.core.errors import InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.volume import Volume
from aimd.imaging.windowing import WINDOW_PRESETS, apply_window, get_window, minmax, normalize


def test_presets_are_the_published_windows() -> None:
    expected = {
        "lung": (-600, 1500),
        "mediastinum": (40, 400),
        "brain": (40, 80),
        "bone": (400, 2000),
        "abdomen": (50, 400),
    }
    assert {k: (w.center, w.width) for k, w in WINDOW_PRESETS.items()} == expected


@pytest.mark.parametrize("preset", sorted(WINDOW_PRESETS))
def test_window_matches_the_linear_definition(preset: str) -> None:
    w = get_window(preset)
    hu = np.linspace(-2000, 4000, 601)
    lo, hi = w.center - w.width / 2, w.center + w.width / 2
    expected = np.clip((hu - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(apply_window(hu, w.center, w.width), expected, atol=1e-6)


def test_brain_window_edges_follow_003() -> None:
    out = apply_window(np.array([0.0, 40.0, 80.0, -5.0, 100.0]), 40, 80)  # WL 40 / WW 80: 0 .. 80 HU
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0, 0.0, 1.0])


def test_window_rejects_bad_width() -> None:
    with pytest.raises(InvalidInputError, match="width"):
        apply_window([1.0], 0, 0)
    with pytest.raises(InvalidInputError, match="unknown window preset"):
        get_window("liverish")


def test_ct_uses_fixed_window_on_hu() -> None:
    vol = read_volume(get_testdata_file("CT_small.dcm"))
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    out = normalize(vol)
    np.testing.assert_allclose(out.array[0], np.clip((hu - (40 - 200)) / 400, 0, 1), atol=1e-6)
    assert out.metadata["normalization"] == {"modality": "CT", "method": "window", "center": 40.0, "width": 400.0}
    assert out.same_grid(vol)
    lung = normalize(vol, "lung")
    np.testing.assert_allclose(lung.array[0], np.clip((hu + 1350) / 1500, 0, 1), atol=1e-6)


def test_mr_min_max_and_robust_percentiles() -> None:
    vol = read_volume(get_testdata_file("MR_small.dcm"))
    a = vol.array.astype(np.float64)
    np.testing.assert_allclose(normalize(vol).array, (a - a.min()) / (a.max() - a.min()), atol=1e-6)
    lo, hi = np.percentile(a, [1, 99])
    robust = normalize(vol, percentiles=(1, 99))
    np.testing.assert_allclose(robust.array, np.clip((a - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert robust.metadata["normalization"]["percentiles"] == [1, 99]


def test_xray_by_bit_depth_and_monochrome1_inverted() -> None:
    vol = read_volume(get_testdata_file("RG3_UNCR.dcm"))  # CR, 10 bits stored, MONOCHROME1
    out = normalize(vol)
    np.testing.assert_allclose(out.array, 1.0 - vol.array / 1023.0, atol=1e-6)
    assert out.metadata["normalization"]["bits"] == 10


def test_xray_monochrome2_by_dtype_without_metadata() -> None:
    vol = Volume(np.array([[[0, 32768, 65535]]], np.uint16), modality="DX")
    np.testing.assert_allclose(normalize(vol).array.ravel(), [0.0, 32768 / 65535, 1.0], atol=1e-6)


def test_constant_image_maps_to_zero() -> None:
    assert minmax(np.full((2, 2), 7.0)).max() == 0.0
    with pytest.raises(InvalidInputError, match="percentiles"):
        minmax([1.0, 2.0], (50, 10))
