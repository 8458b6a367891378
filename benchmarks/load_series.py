"""Benchmark: aimd ``read_volume`` vs SimpleITK ``ImageSeriesReader`` on a 300-slice 512×512 CT series.

Writes a synthetic int16 CT series (RescaleIntercept -1024) with pydicom into a temporary folder,
then times both readers (best of 3 each, same run, warm page cache) and prints both times, the
ratio and the largest voxel and geometry differences.

Usage: ``python benchmarks/load_series.py [--slices 300] [--size 512] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from aimd.imaging.io import read_volume
from value_gate import check_values


def write_series(folder: Path, n_slices: int, size: int, seed: int = 0) -> None:
    """A CT series of ``n_slices`` files, int16 stored values, 0.7 mm pixels, 1.25 mm slices."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    body = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.4 * size) ** 2
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(n_slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.PatientName = "CT", "BENCH", "Bench^Series"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-179.2, -179.2, -200.0 + 1.25 * k]
        ds.PixelSpacing = [0.7, 0.7]
        ds.SliceThickness = 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        plane = np.where(body, 1024 + 40, 0) + rng.integers(-20, 20, (size, size))
        ds.PixelData = plane.astype("<i2").tobytes()
        ds.save_as(folder / f"CT{k:04d}.dcm", enforce_file_format=True)


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def read_sitk(folder: Path) -> tuple[np.ndarray, sitk.Image]:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    return sitk.GetArrayViewFromImage(image), image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aimd-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_series(folder, args.slices, args.size)
        print(
            f"wrote {args.slices} slices of {args.size}x{args.size} in {time.perf_counter() - t0:.2f} s "
            f"(pydicom {pydicom.__version__}, SimpleITK {sitk.Version.VersionString()})"
        )
        t_aimd, vol = best_of(lambda: read_volume(folder), args.repeat)
        t_sitk, (arr, image) = best_of(lambda: read_sitk(folder), args.repeat)
        diff = float(np.max(np.abs(vol.array.astype(np.int32) - arr.astype(np.int32))))
        geo = max(
            float(np.max(np.abs(np.subtract(vol.spacing, image.GetSpacing())))),
            float(np.max(np.abs(np.subtract(vol.origin, image.GetOrigin())))),
            float(np.max(np.abs(vol.direction.ravel() - np.asarray(image.GetDirection())))),
        )
        check_values(
            "voxels and geometry, aimd vs SimpleITK",
            {"voxel_hu": diff, "geometry_mm": geo},
            {"voxel_hu": 0.0, "geometry_mm": 0.0},
            1e-6,
        )
        print(f"aimd read_volume          : {t_aimd:.3f} s (best of {args.repeat})")
        print(f"SimpleITK ImageSeriesReader: {t_sitk:.3f} s (best of {args.repeat})")
        print(f"ratio aimd / SimpleITK     : {t_aimd / t_sitk:.2f}")
        print(f"max voxel difference       : {diff:g} HU; max geometry difference {geo:.2e} mm")


if __name__ == "__main__":
    main()
