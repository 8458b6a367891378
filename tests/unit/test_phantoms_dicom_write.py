"""DICOM writer: geometry against SimpleITK, values against pydicom, bytes against pydicom's encoder."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydantic import ValidationError
from scipy.spatial.transform import Rotation

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.dicom_write import DicomMeta, write_dicom_image, write_dicom_series
from aimd.imaging.volume import Volume

ROT = Rotation.from_euler("xyz", [20.0, -15.0, 35.0], degrees=True).as_matrix()


def _read_sitk(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def _hu_volume(shape: tuple[int, int, int] = (6, 9, 11), seed: int = 0, **kw: object) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(
        rng.integers(-1024, 2500, shape).astype(np.int16),
        spacing=(0.8, 0.7, 2.5),
        origin=(-10.123456, 5.5, 30.25),
        modality="CT",
        **kw,
    )  # type: ignore[arg-type]


def _indices(shape_xyz: tuple[int, int, int], rng: np.random.Generator) -> list[tuple[int, int, int]]:
    nx, ny, nz = shape_xyz
    corners = [(i, j, k) for i in (0, nx - 1) for j in (0, ny - 1) for k in (0, nz - 1)]
    return corners + [tuple(int(v) for v in rng.integers(0, (nx, ny, nz))) for _ in range(20)]


@pytest.mark.parametrize("direction", [np.eye(3), ROT], ids=["axial", "oblique"])
def test_series_geometry_and_values_match_simpleitk(tmp_path: Path, direction: np.ndarray) -> None:
    vol = _hu_volume(direction=direction)
    write_dicom_series(vol, tmp_path / "s")
    img = _read_sitk(tmp_path / "s")
    assert img.GetSize() == vol.size_xyz
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.array)
    for idx in _indices(vol.size_xyz, np.random.default_rng(1)):
        np.testing.assert_allclose(img.TransformIndexToPhysicalPoint(idx), vol.index_to_world(idx), atol=1e-4)


def test_left_handed_slice_order_keeps_world_positions(tmp_path: Path) -> None:
    """Slices stacked against the normal: readers re-sort them, every voxel keeps its world position."""
    flip = np.diag([1.0, 1.0, -1.0])
    vol = _hu_volume(direction=ROT @ flip)
    write_dicom_series(vol, tmp_path / "s")
    img = _read_sitk(tmp_path / "s")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), vol.array[::-1])
    nz = vol.shape[0]
    for i, j, k in _indices(vol.size_xyz, np.random.default_rng(2)):
        np.testing.assert_allclose(
            img.TransformIndexToPhysicalPoint((i, j, nz - 1 - k)), vol.index_to_world((i, j, k)), atol=1e-4
        )


def test_pydicom_reads_hu_and_plane_attributes(tmp_path: Path) -> None:
    vol = _hu_volume(direction=ROT)
    paths = write_dicom_series(vol, tmp_path / "s")
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(hu, vol.array[k])
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], vol.index_to_world((0, 0, k)), atol=1e-6
        )
        np.testing.assert_allclose(
            [float(v) for v in ds.ImageOrientationPatient], np.concatenate([ROT[:, 0], ROT[:, 1]]), atol=1e-9
        )
        assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.8]
        assert float(ds.SliceThickness) == float(ds.SpacingBetweenSlices) == 2.5
        assert int(ds.InstanceNumber) == k + 1 and ds.Modality == "CT" and ds.RescaleType == "HU"


def test_fast_encoding_equals_pydicom_writer(tmp_path: Path) -> None:
    """Hand-assembled bytes are exactly what pydicom's own writer produces for the same data set."""
    meta = DicomMeta(patient_name="ZHANG^WEI=张^伟", patient_id="P1", study_date="20240312", uid_seed="s")
    paths = write_dicom_series(_hu_volume(), tmp_path / "s", meta=meta)
    dx = write_dicom_image(
        np.arange(35, dtype=np.uint16).reshape(5, 7), tmp_path / "dx.dcm", pixel_spacing=(0.2, 0.3), meta=meta
    )
    for path in (paths[0], paths[-1], dx):
        ds = pydicom.dcmread(path)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        assert buffer.getvalue() == path.read_bytes()


def test_same_input_same_bytes_and_uids_from_content(tmp_path: Path) -> None:
    vol = _hu_volume()
    a = write_dicom_series(vol, tmp_path / "a")
    b = write_dicom_series(vol, tmp_path / "b")
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    changed = vol.with_array(vol.array.copy())
    changed.array[0, 0, 0] += 1
    c = write_dicom_series(changed, tmp_path / "c")
    assert pydicom.dcmread(c[0]).SeriesInstanceUID != pydicom.dcmread(a[0]).SeriesInstanceUID
    seeded = [
        write_dicom_series(v, tmp_path / n, meta=DicomMeta(uid_seed="case-7"))[0]
        for v, n in ((vol, "d"), (changed, "e"))
    ]
    assert pydicom.dcmread(seeded[0]).StudyInstanceUID == pydicom.dcmread(seeded[1]).StudyInstanceUID
    r1, r2 = (write_dicom_series(vol, tmp_path / n, meta=DicomMeta(random_uids=True))[0] for n in ("f", "g"))
    assert pydicom.dcmread(r1).SOPInstanceUID != pydicom.dcmread(r2).SOPInstanceUID


@pytest.mark.parametrize(
    ("values", "exact"),
    [
        (np.arange(-2000, 61000, 1000, dtype=np.int32), True),  # needs the uint16 + intercept path
        (np.arange(0, 60000, 1000, dtype=np.uint16), True),
        (np.linspace(-100, 100, 63).round(0) / 4, True),  # quarter steps: slope 0.25
        (np.random.default_rng(0).normal(0, 1, 63), False),
    ],
    ids=["wide-int", "uint16", "quarters", "float-noise"],
)
def test_rescale_recovers_values(tmp_path: Path, values: np.ndarray, exact: bool) -> None:
    arr = np.resize(values, (3, 3, 7)).astype(values.dtype)
    paths = write_dicom_series(Volume(arr, modality="CT"), tmp_path / "s")
    back = np.stack(
        [
            (lambda d: d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept))(pydicom.dcmread(p))
            for p in paths
        ]
    )
    if exact:
        np.testing.assert_array_equal(back.astype(arr.dtype), arr)
    else:
        slope = float(pydicom.dcmread(paths[0]).RescaleSlope)
        assert np.abs(back - arr).max() <= slope / 2 + 1e-12


def test_mr_float_series_roundtrip(tmp_path: Path) -> None:
    arr = (np.arange(4 * 5 * 6).reshape(4, 5, 6) * 0.5).astype(np.float32)
    paths = write_dicom_series(Volume(arr, spacing=(1.0, 1.0, 3.0), modality="MR"), tmp_path / "mr")
    ds = pydicom.dcmread(paths[2])
    assert ds.SOPClassUID == pydicom.uid.MRImageStorage
    back = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(back, arr[2])


def test_modality_inferred_when_missing(tmp_path: Path) -> None:
    hu = _hu_volume()
    hu.modality = None
    assert pydicom.dcmread(write_dicom_series(hu, tmp_path / "ct")[0]).Modality == "CT"
    mr = Volume(np.arange(60, dtype=np.int16).reshape(3, 4, 5))
    assert pydicom.dcmread(write_dicom_series(mr, tmp_path / "mr")[0]).Modality == "MR"


def test_meta_from_volume_metadata(tmp_path: Path) -> None:
    vol = _hu_volume(
        metadata={
            "PatientName": "DOE^JANE",
            "StudyDate": "2024-03-12",
            "patient_sex": "X",
            "dicom": {"AccessionNumber": "ACC42"},
            "window_center": -600,
            "window_width": 1500,
        }
    )
    ds = pydicom.dcmread(write_dicom_series(vol, tmp_path / "s")[0])
    assert (str(ds.PatientName), ds.StudyDate, ds.AccessionNumber, ds.PatientSex) == (
        "DOE^JANE",
        "20240312",
        "ACC42",
        "",
    )
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (-600.0, 1500.0)


def test_meta_validation() -> None:
    with pytest.raises(ValidationError):
        DicomMeta(study_date="2024-03-12")
    with pytest.raises(ValidationError):
        DicomMeta(station_name="X" * 17)
    with pytest.raises(InvalidInputError, match="study_instance_uid"):
        DicomMeta.from_mapping({"study_instance_uid": "1.02.3"})


@pytest.mark.parametrize(
    ("volume", "error"),
    [
        (Volume(np.zeros((2, 2, 2)), direction=[[1, 0, 0], [0.5, 1, 0], [0, 0, 1]]), GeometryError),
        (Volume(np.zeros((2, 2, 2)), direction=[[1, 0, 0.3], [0, 1, 0], [0, 0, 1]]), GeometryError),
        (Volume(np.full((2, 2, 2), np.nan)), InvalidInputError),
        (Volume(np.zeros((2, 2, 2)), modality="US"), InvalidInputError),
    ],
    ids=["non-orthonormal", "sheared", "nan", "modality"],
)
def test_bad_series_input(tmp_path: Path, volume: Volume, error: type[Exception]) -> None:
    with pytest.raises(error):
        write_dicom_series(volume, tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_existing_output_is_kept(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "keep.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="not empty"):
        write_dicom_series(_hu_volume(), tmp_path / "s")
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["keep.txt"]
    assert len(write_dicom_series(_hu_volume(), tmp_path / "s", overwrite=True)) == 6


def test_radiograph_roundtrip(tmp_path: Path) -> None:
    img = np.random.default_rng(0).integers(0, 4096, (40, 30)).astype(np.uint16)
    meta = DicomMeta(patient_id="P9", body_part_examined="CHEST", kvp=120)
    path = write_dicom_image(img, tmp_path / "dx.dcm", pixel_spacing=(0.5, 0.4), meta=meta)
    ds = pydicom.dcmread(path)
    np.testing.assert_array_equal(ds.pixel_array, img)
    assert ds.SOPClassUID == pydicom.uid.DigitalXRayImageStorageForPresentation
    assert ds.PresentationIntentType == "FOR PRESENTATION" and ds.Modality == "DX"
    assert [float(v) for v in ds.ImagerPixelSpacing] == [0.5, 0.4] and ds.BitsStored == 12
    assert ds.AnatomicRegionSequence[0].CodeMeaning == "Chest" and ds.ViewPosition == "AP"
    cr = pydicom.dcmread(write_dicom_image(img, tmp_path / "cr.dcm", pixel_spacing=(0.5, 0.4), modality="CR"))
    assert cr.SOPClassUID == pydicom.uid.ComputedRadiographyImageStorage


@pytest.mark.parametrize(
    "image",
    [np.full((3, 3), -1), np.full((3, 3), 0.5), np.zeros((2, 2, 2), np.uint16), np.full((3, 3), 70000)],
    ids=["negative", "fraction", "3d", "too-big"],
)
def test_bad_radiograph_input(tmp_path: Path, image: np.ndarray) -> None:
    with pytest.raises(InvalidInputError):
        write_dicom_image(image, tmp_path / "dx.dcm", pixel_spacing=(1.0, 1.0))
    assert not (tmp_path / "dx.dcm").exists()


def test_converted_series_keeps_study_but_gets_new_series_uid(tmp_path: Path) -> None:
    vol = _hu_volume(
        metadata={"StudyInstanceUID": "1.2.3.4", "SeriesInstanceUID": "1.2.3.4.5", "FrameOfReferenceUID": "1.2.3.6"}
    )
    ds = pydicom.dcmread(write_dicom_series(vol, tmp_path / "s")[0])
    assert (ds.StudyInstanceUID, ds.FrameOfReferenceUID) == ("1.2.3.4", "1.2.3.6")
    assert ds.SeriesInstanceUID != "1.2.3.4.5"


def test_reader_metadata_keys_are_understood(tmp_path: Path) -> None:
    vol = _hu_volume(metadata={"study_uid": "1.2.3.4", "series_uid": "1.2.3.4.5", "series_description": "AX"})
    ds = pydicom.dcmread(write_dicom_series(vol, tmp_path / "s")[0])
    assert (ds.StudyInstanceUID, ds.SeriesDescription) == ("1.2.3.4", "AX")
    assert ds.SeriesInstanceUID != "1.2.3.4.5"
