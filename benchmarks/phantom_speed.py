"""Phantom generation speed: ``generate_dataset`` for 100 cases at 128³, plus the DICOM series writer
against pydicom's own writer (one ``Dataset.save_as`` per slice) on the same volume, measured in the
same run.

Run: ``python benchmarks/phantom_speed.py [--cases 100] [--size 128] [--workers N]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from aimd.imaging.dicom_write import DicomMeta, write_dicom_series
from aimd.phantoms import generate_dataset
from aimd.phantoms.case import build_case, dicom_meta
from aimd.phantoms.sites import SITE_PROFILES
from value_gate import check_values


def _pydicom_series(volume_hu: np.ndarray, template_dir: Path, out_dir: Path) -> None:
    """Peer: rebuild each slice as a pydicom Dataset and let pydicom encode and write it."""
    import pydicom

    out_dir.mkdir()
    base = pydicom.dcmread(next(iter(sorted(template_dir.iterdir()))))
    root = str(base.SOPInstanceUID)[:50]
    for k in range(volume_hu.shape[0]):
        ds = base.copy()
        ds.file_meta = FileMetaDataset(base.file_meta)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPInstanceUID = f"{root}.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [0.0, 0.0, float(k)]
        ds.PixelData = volume_hu[k].astype("<i2").tobytes()
        ds.save_as(out_dir / f"IM{k + 1:05d}.dcm", enforce_file_format=True)


def _series_values(folder: Path) -> dict[str, float]:
    """Per slice (by position): the sum of HU and the z position, read back with pydicom."""
    import pydicom

    out: dict[str, float] = {}
    for path in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        z = float(ds.ImagePositionPatient[2])
        hu = ds.pixel_array.astype(np.float64) * float(getattr(ds, "RescaleSlope", 1)) + float(
            getattr(ds, "RescaleIntercept", 0)
        )
        out[f"slice@{z:.3f}:hu_sum"] = float(hu.sum())
        out[f"slice@{z:.3f}:z"] = z
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    workers = args.workers or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="aimd-bench-"))
    try:
        start = time.perf_counter()
        generate_dataset(work / "ds", cases=args.cases, seed=args.seed, size=args.size, workers=workers)
        seconds = time.perf_counter() - start
        print(
            f"generate_dataset: {args.cases} cases at {args.size}^3 on {workers} worker(s): "
            f"{seconds:.2f} s, {args.cases / seconds:.2f} cases/s"
        )

        case = build_case("bench", 0, seed=args.seed, size=args.size, site=SITE_PROFILES[0])
        volume = case.grid.volume(case.ct)
        meta: DicomMeta = dicom_meta(case, 1)
        repeats = 5
        start = time.perf_counter()
        for r in range(repeats):
            write_dicom_series(volume, work / f"aimd{r}", meta=meta, fsync=False)
        ours = (time.perf_counter() - start) / repeats
        start = time.perf_counter()
        for r in range(repeats):
            _pydicom_series(case.ct, work / "aimd0", work / f"peer{r}")
        peer = (time.perf_counter() - start) / repeats
        check_values(
            "CT series written by aimd vs pydicom (HU per voxel, slice positions)",
            _series_values(work / "aimd0"),
            _series_values(work / "peer0"),
            0.0,
        )
        print(
            f"CT series write ({args.size} slices): aimd {ours * 1000:.1f} ms, pydicom save_as per slice "
            f"{peer * 1000:.1f} ms, ratio {peer / ours:.1f}x"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
