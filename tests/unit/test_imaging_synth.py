"""Synthetic DICOM series with known geometry (written with pydicom) and voxel-matching helpers.

The writer is the ground truth of the defective-series tests; the tests here pin it to SimpleITK,
an independent reader, so a fixture is only "defective" where a test makes it so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

from aimd.imaging.volume import Volume

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


@dataclass
class SynthSeries:
    folder: Path
    paths: list[Path]  # in slice (index k) order of the ground truth
    values: NDArray[Any]  # (n, rows, cols) values after rescale, slice order
    positions: NDArray[np.float64]  # (n, 3) ImagePositionPatient per slice
    series_uid: str


def write_series(
    folder: Path,
    *,
    n: int = 5,
    rows: int = 6,
    cols: int = 7,
    pixel_spacing: tuple[float, float] = (0.8, 0.6),
    step: float = 2.0,
    origin: Sequence[float] = (-20.0, -30.0, 40.0),
    iop: Sequence[float] = AXIAL,
    positions: Sequence[Sequence[float]] | None = None,
    values: NDArray[Any] | None = None,
    slope: float = 1.0,
    intercept: float = -1024.0,
    modality: str = "CT",
    series_uid: str | None = None,
    study_uid: str | None = None,
    instance_numbers: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    overrides: dict[int, dict[str, Any]] | None = None,
    seed: int = 0,
) -> SynthSeries:
    """Write ``n`` single-frame slices; slice k sits at ``origin + k * step * (row × col)``."""
    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    pos = (
        np.asarray(positions, float)
        if positions is not None
        else np.asarray(origin, float) + np.outer(np.arange(n) * step, normal)
    )
    n = len(pos)
    rng = np.random.default_rng(seed)
    if values is None:
        values = rng.integers(-1000, 2000, size=(n, rows, cols)).astype(np.float64)
    stored = np.rint((np.asarray(values, float) - intercept) / slope).astype(np.int16)
    truth = stored.astype(np.float64) * slope + intercept
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    paths = []
    for k in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = modality, "SYNTH", "Synth^Series"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.SeriesDescription = "synthetic"
        ds.SeriesNumber = 1
        # the remaining type 1/2 attributes of the CT/MR image IODs, so dciodvfy finds no error
        ds.PatientBirthDate, ds.PatientSex, ds.StudyDate, ds.StudyTime = "", "O", "20240101", "120000"
        ds.ReferringPhysicianName, ds.StudyID, ds.AccessionNumber = "", "1", ""
        ds.Laterality, ds.PatientPosition, ds.PositionReferenceIndicator = "", "HFS", ""
        ds.Manufacturer, ds.AcquisitionNumber = "aimd-tests", 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        if modality == "CT":
            ds.KVP = "120"
        else:
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "GR", "NONE", ""
            ds.MRAcquisitionType, ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = "3D", "", "", ""
        ds.InstanceNumber = int(instance_numbers[k]) if instance_numbers is not None else k + 1
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in iop]
        ds.ImagePositionPatient = [f"{v:.6f}" for v in pos[k]]
        ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
        ds.SliceThickness = f"{abs(step):g}"
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = f"{intercept:g}", f"{slope:g}"
        if modality == "CT":
            ds.RescaleType = "HU"
        ds.PixelData = stored[k].astype("<i2").tobytes()
        for keyword in drop:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword, value in ((overrides or {}).get(k) or {}).items():
            if value is None:
                if keyword in ds:
                    delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        path = folder / (names[k] if names is not None else f"IM{k:04d}.dcm")
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return SynthSeries(folder, paths, truth, pos, series_uid)


def voxel_world(volume: Volume) -> NDArray[np.float64]:
    """LPS position of every voxel, in array (z, y, x) order, shape (n, 3)."""
    z, y, x = volume.shape
    k, j, i = np.meshgrid(np.arange(z), np.arange(y), np.arange(x), indexing="ij")
    return volume.index_to_world(np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1))


def assert_matches_sitk(volume: Volume, image: sitk.Image, *, atol_mm: float = 1e-4, value_atol: float = 0.0) -> None:
    """Every aimd voxel lies on a SimpleITK voxel centre (≤ atol_mm) holding the same value.

    The comparison goes through world space, so two readers that stack the slices in opposite
    order still agree when they place every value at the same LPS position.
    """
    assert image.GetNumberOfComponentsPerPixel() == 1
    assert sorted(volume.size_xyz) == sorted(image.GetSize()[:3])
    world = voxel_world(volume)
    spacing = np.asarray(image.GetSpacing())
    matrix = np.asarray(image.GetDirection()).reshape(3, 3) * spacing
    cont = (world - np.asarray(image.GetOrigin())) @ np.linalg.inv(matrix).T
    idx = np.rint(cont).astype(int)
    residual_mm = np.abs((cont - idx) @ matrix.T)
    assert residual_mm.max() <= atol_mm, f"positions differ by {residual_mm.max():.3g} mm"
    size = np.asarray(image.GetSize())
    assert (idx >= 0).all() and (idx < size).all(), "aimd voxel outside the SimpleITK grid"
    theirs = sitk.GetArrayViewFromImage(image)[idx[:, 2], idx[:, 1], idx[:, 0]].astype(np.float64)
    ours = volume.array.ravel().astype(np.float64)
    finite = ~np.isnan(ours)  # ITK's NIfTI reader turns NaN into 0; nibabel and aimd keep NaN
    assert (theirs[~finite] == 0).all()
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=0, atol=value_atol)
    linear = (idx[:, 2] * size[1] + idx[:, 1]) * size[0] + idx[:, 0]
    assert np.unique(linear).size == idx.shape[0], "two aimd voxels map to one SimpleITK voxel"


def sitk_series(folder: Path) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


# ----------------------------------------------------------------------------- the fixtures themselves
def test_synthetic_series_is_what_simpleitk_reads(tmp_path: Path) -> None:
    iop = (0.8, 0.6, 0.0, 0.0, 0.0, -1.0)  # oblique rows, coronal-like columns
    synth = write_series(tmp_path, n=4, iop=iop, step=1.5, origin=(10.0, -5.0, 7.0))
    image = sitk_series(tmp_path)
    assert image.GetSize() == (7, 6, 4)
    np.testing.assert_allclose(image.GetOrigin(), synth.positions[0], atol=1e-5)
    np.testing.assert_allclose(image.GetSpacing(), (0.6, 0.8, 1.5), atol=1e-6)
    for k in range(4):
        corner = image.TransformIndexToPhysicalPoint((0, 0, k))
        np.testing.assert_allclose(corner, synth.positions[k], atol=1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), synth.values)


def test_synthetic_file_is_valid_pydicom(tmp_path: Path) -> None:
    synth = write_series(tmp_path, n=1, slope=2.0, intercept=-1000.0)
    ds = pydicom.dcmread(synth.paths[0])
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(hu, synth.values[0])
