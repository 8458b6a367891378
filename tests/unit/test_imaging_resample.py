"""Resampling (001 §7.2 c): checked against analytic ramps and scipy's independent interpolator."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from scipy import ndimage
from test_imaging_synth import assert_matches_sitk, voxel_world

from aimd.core.errors import InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.resample import from_sitk, resample_to_reference, resample_to_spacing, to_sitk
from aimd.imaging.volume import Volume


def _rotation(ax: float, az: float) -> np.ndarray:
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def _ramp(volume_like: Volume, coef: np.ndarray, c0: float) -> np.ndarray:
    """A field linear in world position, sampled at every voxel of ``volume_like`` (z, y, x)."""
    return (voxel_world(volume_like) @ coef + c0).reshape(volume_like.shape)


def test_to_sitk_from_sitk_round_trip_and_geometry() -> None:
    vol = read_volume(get_testdata_file("eCT_Supplemental.dcm"))
    image = to_sitk(vol)
    assert_matches_sitk(vol, image)
    back = from_sitk(image, modality="CT")
    assert back.same_grid(vol) and np.array_equal(back.array, vol.array)


def test_from_sitk_2d_and_vector_errors() -> None:
    img = sitk.Image(5, 4, sitk.sitkUInt8)
    img.SetSpacing((0.5, 0.25))
    vol = from_sitk(img)
    assert vol.shape == (1, 4, 5) and vol.spacing == (0.5, 0.25, 1.0)
    with pytest.raises(InvalidInputError, match="vector image"):
        from_sitk(sitk.Image([3, 3], sitk.sitkVectorFloat32, 3))


def test_linear_resampling_reproduces_a_linear_field_on_an_oblique_grid() -> None:
    coef, c0 = np.array([0.7, -1.3, 2.1]), 5.0
    src = Volume(
        np.zeros((12, 14, 16), np.float32),
        spacing=(1.0, 1.2, 2.0),
        origin=(-3.0, 4.0, 10.0),
        direction=_rotation(0.3, -0.5),
    )
    src = src.with_array(_ramp(src, coef, c0).astype(np.float32))
    out = resample_to_spacing(src, (0.8, 0.8, 1.0))
    assert out.shape == (24, 21, 20) and out.array.dtype == np.float32
    assert out.origin == src.origin and np.allclose(out.direction, src.direction)
    idx = src.world_to_index(voxel_world(out))
    ok = ((idx >= 0) & (idx <= np.asarray(src.size_xyz) - 1)).all(axis=1)
    np.testing.assert_allclose(out.array.ravel()[ok], _ramp(out, coef, c0).ravel()[ok], atol=1e-3)
    record = out.metadata["resampling"][-1]
    assert record["original_spacing"] == [1.0, 1.2, 2.0] and record["new_spacing"] == [0.8, 0.8, 1.0]
    assert record["interpolator"] == "linear"


def test_resample_to_reference_matches_scipy_map_coordinates() -> None:
    rng = np.random.default_rng(1)
    src = Volume(
        rng.normal(size=(8, 9, 10)).astype(np.float32),
        spacing=(1.5, 1.0, 2.0),
        origin=(1, 2, 3),
        direction=_rotation(0.2, 0.4),
    )
    ref = Volume(
        np.zeros((5, 6, 7), np.uint8), spacing=(1.1, 1.3, 1.7), origin=(3.0, 4.0, 6.0), direction=_rotation(-0.1, 0.9)
    )
    out = resample_to_reference(src, ref)
    assert out.same_grid(ref)
    idx = src.world_to_index(voxel_world(ref))  # (i, j, k) continuous
    inside = ((idx >= 0) & (idx <= np.asarray(src.size_xyz) - 1)).all(axis=1)
    assert inside.sum() > 20
    expected = ndimage.map_coordinates(src.array.astype(np.float64), idx[:, ::-1].T, order=1)
    np.testing.assert_allclose(out.array.ravel()[inside], expected[inside], atol=1e-4)


def test_labels_use_nearest_neighbour_and_keep_dtype() -> None:
    rng = np.random.default_rng(2)
    labels = Volume(rng.integers(0, 4, size=(6, 6, 6)).astype(np.uint8), spacing=(1.0, 1.0, 1.0))
    out = resample_to_spacing(labels, (0.6, 0.6, 0.6), is_label=True)  # 0.6 k never ends in .5: no ties
    assert out.array.dtype == np.uint8
    assert set(np.unique(out.array)) <= set(np.unique(labels.array))
    idx = np.rint(labels.world_to_index(voxel_world(out))).astype(int)
    idx = np.clip(idx, 0, 5)
    np.testing.assert_array_equal(out.array.ravel(), labels.array[idx[:, 2], idx[:, 1], idx[:, 0]])
    assert out.metadata["resampling"][-1]["interpolator"] == "nearest"


def test_resampling_drops_stale_slice_metadata_and_keeps_history() -> None:
    vol = read_volume(get_testdata_file("CT_small.dcm"))
    once = resample_to_spacing(vol, (1.0, 1.0, 5.0))
    twice = resample_to_spacing(once, (2.0, 2.0, 5.0))
    assert "slice_positions" not in twice.metadata
    assert twice.metadata["series_uid"] == vol.metadata["series_uid"]
    assert [r["new_spacing"] for r in twice.metadata["resampling"]] == [[1.0, 1.0, 5.0], [2.0, 2.0, 5.0]]
    assert twice.modality == "CT"


@pytest.mark.parametrize("spacing", [(0, 1, 1), (1, 1), (1, float("nan"), 1)])
def test_bad_spacing(spacing: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInputError, match="spacing"):
        resample_to_spacing(Volume(np.zeros((2, 2, 2))), spacing)
