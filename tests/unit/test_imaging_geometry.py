"""Geometry checks (001 §7.2 a–f): one purpose-built defective series per check, plus real data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path
from pydicom.data import get_testdata_file
from test_imaging_synth import write_series

from aimd.core.config import get_settings
from aimd.core.errors import InvalidInputError
from aimd.core.findings import Finding, Severity
from aimd.imaging.geometry import check_series, check_volume
from aimd.imaging.volume import Volume

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _codes(findings: list[Finding]) -> dict[str, Finding]:
    for f in findings:
        assert f.clause.startswith("001 §7.2 ") and f.clause[-1] in "abcdefgh", f.clause
    return {f.code: f for f in findings}


def test_clean_series_has_no_findings(tmp_path: Path) -> None:
    write_series(tmp_path, n=6)
    assert check_series(tmp_path) == []


def test_missing_slice_is_a_gap(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=8, step=2.0)
    synth.paths[4].unlink()
    gap = _codes(check_series(tmp_path))["SLICE_GAP"]
    assert gap.severity is Severity.ERROR and gap.clause == "001 §7.2 e"
    assert gap.location["file"] == str(synth.paths[5])
    assert gap.location["previous_file"] == str(synth.paths[3])
    assert gap.location["slice"] == 4
    assert "about 1 slice(s) missing" in gap.message


def test_duplicate_slice(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=5)
    shutil.copy(synth.paths[2], tmp_path / "IM0002_copy.dcm")
    found = _codes(check_series(tmp_path))
    dup = found["SLICE_DUPLICATE"]
    assert dup.severity is Severity.ERROR
    assert {dup.location["file"], dup.location["duplicate_of"]} == {
        str(synth.paths[2]),
        str(tmp_path / "IM0002_copy.dcm"),
    }
    assert "SLICE_GAP" not in found


def test_non_uniform_spacing_is_a_warning(tmp_path: Path) -> None:
    write_series(tmp_path, positions=[(0, 0, z) for z in (0.0, 2.0, 4.4, 6.0, 8.0)])
    found = _codes(check_series(tmp_path))
    assert set(found) == {"SPACING_NON_UNIFORM"}
    assert found["SPACING_NON_UNIFORM"].severity is Severity.WARNING


def test_spacing_tolerance_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_series(tmp_path, positions=[(0, 0, z) for z in (0.0, 2.0, 4.1, 6.0, 8.0)])
    assert "SPACING_NON_UNIFORM" in _codes(check_series(tmp_path))
    monkeypatch.setenv("AIMD_GEOMETRY__SPACING_RTOL", "0.1")
    get_settings.cache_clear()
    assert check_series(tmp_path) == []


def test_perturbed_orientation_is_not_orthonormal(tmp_path: Path) -> None:
    write_series(tmp_path, n=3, iop=(1.0, 0.0, 0.0, 0.05, 1.0, 0.0))
    bad = _codes(check_series(tmp_path))["DIRECTION_NOT_ORTHONORMAL"]
    assert bad.severity is Severity.ERROR and bad.clause == "001 §7.2 b"
    assert bad.location["tag"].startswith("(0020,0037)")


def test_mixed_orientations(tmp_path: Path) -> None:
    sagittal = ["0", "1", "0", "0", "0", "-1"]
    synth = write_series(tmp_path, n=4, overrides={3: {"ImageOrientationPatient": sagittal}})
    found = _codes(check_series(tmp_path))
    assert found["MIXED_ORIENTATION"].location["file"] == str(synth.paths[3])
    assert found["MIXED_ORIENTATION"].severity is Severity.ERROR


def test_mixed_sizes(tmp_path: Path) -> None:
    write_series(tmp_path / "a", n=2, rows=6)
    write_series(tmp_path / "b", n=1, rows=5)
    for p in (tmp_path / "b").iterdir():
        ds = pydicom.dcmread(p)
        ds.SeriesInstanceUID = pydicom.dcmread(next((tmp_path / "a").iterdir())).SeriesInstanceUID
        ds.save_as(tmp_path / "a" / "odd.dcm", enforce_file_format=True)
    found = _codes(check_series(tmp_path / "a"))
    assert found["MIXED_SIZE"].location["file"] == str(tmp_path / "a" / "odd.dcm")


@pytest.mark.parametrize(
    "drop, code, clause",
    [
        ("ImageOrientationPatient", "DIRECTION_MISSING", "001 §7.2 b"),
        ("ImagePositionPatient", "ORIGIN_MISSING", "001 §7.2 d"),
        ("PixelSpacing", "SPACING_MISSING", "001 §7.2 c"),
    ],
)
def test_missing_geometry_tags(tmp_path: Path, drop: str, code: str, clause: str) -> None:
    write_series(tmp_path, n=3, drop=(drop,))
    found = _codes(check_series(tmp_path))
    assert found[code].severity is Severity.ERROR and found[code].clause == clause
    assert found[code].location["n_files"] == 3


def test_zero_pixel_spacing(tmp_path: Path) -> None:
    write_series(tmp_path, n=2, overrides={1: {"PixelSpacing": ["0", "0"]}})
    assert "SPACING_MISSING" in _codes(check_series(tmp_path))


def test_all_slices_at_one_position(tmp_path: Path) -> None:
    write_series(tmp_path, positions=[(0.0, 0.0, 5.0)] * 3)
    found = _codes(check_series(tmp_path))
    assert "SLICE_DUPLICATE" in found and "SPACING_MISSING" in found


def test_projection_image_without_orientation_is_only_warned() -> None:
    found = _codes(check_series(get_testdata_file("RG3_UNCR.dcm")))
    assert found["DIRECTION_MISSING"].severity is Severity.WARNING
    assert found["ORIGIN_MISSING"].severity is Severity.WARNING


def test_reversed_instance_numbers(tmp_path: Path) -> None:
    write_series(tmp_path, n=5, instance_numbers=[5, 4, 3, 2, 1])
    found = _codes(check_series(tmp_path))
    assert set(found) == {"SLICE_ORDER_REVERSED"}
    assert found["SLICE_ORDER_REVERSED"].severity is Severity.WARNING


def test_reversed_file_names_without_instance_numbers(tmp_path: Path) -> None:
    write_series(tmp_path, n=4, names=["d.dcm", "c.dcm", "b.dcm", "a.dcm"], drop=("InstanceNumber",))
    found = _codes(check_series(tmp_path))
    assert "file name" in found["SLICE_ORDER_REVERSED"].message


def test_shuffled_instance_numbers(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=5, instance_numbers=[1, 2, 4, 3, 5])
    order = _codes(check_series(tmp_path))["SLICE_ORDER_INCONSISTENT"]
    assert order.location["file"] == str(synth.paths[3])


def test_real_series_with_instance_numbers_against_space() -> None:
    found = _codes(check_series(DICOMDIR_TESTS / "98892001" / "CT5N"))
    assert set(found) == {"SLICE_ORDER_REVERSED"}


def test_positions_drifting_sideways(tmp_path: Path) -> None:
    write_series(tmp_path, positions=[(1.5 * k, 0.0, 2.0 * k) for k in range(4)])
    assert "SLICE_OFF_NORMAL" in _codes(check_series(tmp_path))


def test_mixed_series_in_folder(tmp_path: Path) -> None:
    write_series(tmp_path, n=2, names=["a0.dcm", "a1.dcm"])
    write_series(tmp_path, n=3, names=["b0.dcm", "b1.dcm", "b2.dcm"], step=-1.0)
    found = check_series(tmp_path)
    mixed = _codes(found)["MIXED_SERIES"]
    assert mixed.severity is Severity.WARNING
    assert sum(f.code == "SLICE_ORDER_REVERSED" for f in found) == 1  # the second series only


def test_real_mixed_orientation_series() -> None:
    found = _codes(check_series(DICOMDIR_TESTS / "98892003" / "MR700"))
    assert found["MIXED_ORIENTATION"].location["n_files"] == 6


def test_real_series_with_gap() -> None:
    gap = _codes(check_series(DICOMDIR_TESTS / "77654033" / "CT2"))["SLICE_GAP"]
    assert gap.location["slice"] == 1


# ----------------------------------------------------------------------------- pixel values (f)
def test_hu_out_of_range_is_an_error(tmp_path: Path) -> None:
    values = np.zeros((3, 6, 7))
    values[0, :2] = -3000
    write_series(tmp_path, n=3, values=values)
    hu = _codes(check_series(tmp_path))["HU_OUT_OF_RANGE"]
    assert hu.severity is Severity.ERROR and hu.clause == "001 §7.2 f" and hu.location["slice"] == 0


def test_hu_padding_value_is_not_counted(tmp_path: Path) -> None:
    values = np.zeros((3, 6, 7))
    values[:, 0] = -3000
    padding = {k: {"PixelPaddingValue": -3000 + 1024} for k in range(3)}  # stored value of -3000 HU
    write_series(tmp_path, n=3, values=values, overrides=padding)
    assert check_series(tmp_path) == []


def test_few_out_of_range_voxels_are_info_and_fraction_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = np.zeros((3, 20, 20))
    values[1, 3, 3] = 5000  # 1 of 1200 voxels: below the 0.1 % default
    write_series(tmp_path, n=3, rows=20, cols=20, values=values)
    assert _codes(check_series(tmp_path))["HU_OUT_OF_RANGE"].severity is Severity.INFO
    monkeypatch.setenv("AIMD_GEOMETRY__OUT_OF_RANGE_FRACTION", "0.0001")
    get_settings.cache_clear()
    assert _codes(check_series(tmp_path))["HU_OUT_OF_RANGE"].severity is Severity.ERROR


def test_ct_without_rescale_and_wrong_unit(tmp_path: Path) -> None:
    write_series(tmp_path / "a", n=2, intercept=0.0, drop=("RescaleSlope", "RescaleIntercept"))
    assert "RESCALE_MISSING" in _codes(check_series(tmp_path / "a"))
    write_series(tmp_path / "b", n=2, overrides={k: {"RescaleType": "US"} for k in range(2)})
    assert "HU_UNIT" in _codes(check_series(tmp_path / "b"))


# ----------------------------------------------------------------------------- unreadable and NIfTI input
def test_corrupt_file_is_named(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=4)
    synth.paths[1].write_bytes(b"DICM but really not")
    found = check_series(tmp_path)
    bad = _codes(found)["FILE_UNREADABLE"]
    assert bad.severity is Severity.ERROR and bad.location["file"] == str(synth.paths[1])
    assert "SLICE_GAP" in _codes(found)  # the rest is still checked: the missing file is a gap


def test_truncated_pixel_data_is_unreadable() -> None:
    found = _codes(check_series(get_testdata_file("MR_truncated.dcm")))
    assert "truncated" in found["FILE_UNREADABLE"].message


def test_non_image_dicom_is_reported_as_info(tmp_path: Path) -> None:
    write_series(tmp_path, n=2)
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "plan.dcm")
    skipped = _codes(check_series(tmp_path))["NON_IMAGE_SKIPPED"]
    assert skipped.severity is Severity.INFO


@pytest.mark.parametrize("setup", ["empty", "text", "png"])
def test_no_image_is_bad_input(tmp_path: Path, setup: str) -> None:
    target = tmp_path
    if setup == "text":
        (tmp_path / "notes.txt").write_text("x")
    elif setup == "png":
        target = tmp_path / "a.png"
        target.write_bytes(b"\x89PNG")
    with pytest.raises(InvalidInputError):
        check_series(target)


def test_left_handed_nifti() -> None:
    # anatomical.nii: RAS affine diag(-2, 2, 2) → LPS columns (+x, -y, +z): det < 0
    found = _codes(check_series(Path(data_path) / "anatomical.nii"))
    assert found["DIRECTION_LEFT_HANDED"].severity is Severity.WARNING


def test_nifti_without_orientation(tmp_path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((2, 3, 4), np.int16), np.eye(4))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, tmp_path / "bare.nii.gz")
    found = _codes(check_series(tmp_path / "bare.nii.gz"))
    assert {"DIRECTION_MISSING", "ORIGIN_MISSING"} <= set(found)


def test_check_volume_direction_from_grid() -> None:
    sheared = np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert set(_codes(check_volume(Volume(np.zeros((2, 2, 2)), direction=sheared)))) == {"DIRECTION_NOT_ORTHONORMAL"}
    assert check_volume(Volume(np.zeros((2, 2, 2)))) == []


def test_the_hu_check_counts_slab_by_slab_as_over_the_whole_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    from aimd.imaging import geometry

    rng = np.random.default_rng(7)
    arr = rng.integers(-3100, 3300, (9, 16, 16)).astype(np.int16)
    arr[:, :2] = -3000  # the padding value
    vol = Volume(arr, modality="CT", metadata={"pixel_padding_value": -3000.0})
    valid = arr != -3000
    outside = valid & ((arr < -1024) | (arr > 3071))
    want = outside.sum(), int(np.argmax(outside.sum(axis=(1, 2)))), arr[valid].min(), arr[valid].max()
    monkeypatch.setattr(geometry, "_SLAB_VOXELS", 2 * 16 * 16)  # slabs of 2 slices, the last one alone
    hu = _codes(check_volume(vol))["HU_OUT_OF_RANGE"]
    assert f"{want[0]} voxel(s)" in hu.message and hu.location["slice"] == want[1]
    assert f"(min {want[2]:g}, max {want[3]:g})" in hu.message
    n_valid, per_slice, low, high = geometry._hu_counts(arr, -3000.0, -1024, 3071)
    assert n_valid == valid.sum() and per_slice.tolist() == outside.sum(axis=(1, 2)).tolist()
    assert (low, high) == (want[2], want[3])
