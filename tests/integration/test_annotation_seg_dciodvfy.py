"""Masks exported as DICOM SEG pass dciodvfy and hold exactly the package's masks (read with pydicom)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from aimd.annotation import export_packages, export_seg, read_sources, simulate_annotators, verify_export
from aimd.annotation.masks import image_grid
from aimd.phantoms import generate_dataset

DCIODVFY = shutil.which("dciodvfy")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(DCIODVFY is None, reason="dciodvfy (Debian package dicom3tools) is not installed"),
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seg") / "ph"
    generate_dataset(out, cases=1, seed=2, size=48, workers=1)
    simulate_annotators(out, 3, seed=0)
    return out


def _dciodvfy(path: Path) -> list[str]:
    proc = subprocess.run([str(DCIODVFY), str(path)], capture_output=True, text=True, timeout=120)
    lines = (proc.stdout + proc.stderr).splitlines()
    assert lines, f"dciodvfy printed nothing for {path}"
    return lines


@pytest.mark.parametrize("reader", ["reader_1", "reader_3"])  # manual, and model-assisted (SEMIAUTOMATIC)
def test_seg_is_valid_and_frames_equal_the_masks(dataset: Path, tmp_path: Path, reader: str) -> None:
    src = read_sources(dataset / "cases/case_0001/annotations" / f"{reader}.json")[0]
    export_seg(src, tmp_path / "seg.dcm")
    lines = _dciodvfy(tmp_path / "seg.dcm")
    assert lines[0].strip() == "Segmentation"
    assert [ln for ln in lines if ln.startswith("Error")] == []
    assert [ln for ln in lines if ln.startswith("Warning")] == []

    ds = pydicom.dcmread(tmp_path / "seg.dcm")
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), int(ds.Rows), int(ds.Columns))
    grid = image_grid(src.package.image)
    masks = [a for a in src.package.annotations if a.type.value == "mask"]
    by_number = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
    assert [str(by_number[n].TrackingID) for n in sorted(by_number)] == [a.id for a in masks]
    expected = {}
    for n, ann in enumerate(masks, start=1):
        arr = np.transpose(np.asarray(nib.load(str(src.resolve(ann.data.mask_file))).dataobj), (2, 1, 0))
        expected[n] = arr == ann.data.mask_value
        algo = str(by_number[n].SegmentAlgorithmType)
        assert algo == ("SEMIAUTOMATIC" if ann.provenance and ann.provenance.source != "manual" else "MANUAL")
    seen = {n: 0 for n in expected}
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        i, j, k = np.rint(grid.world_to_index(ipp)).astype(int)
        assert (i, j) == (0, 0)
        assert np.array_equal(frames[f].astype(bool), expected[number][k])
        seen[number] += int(frames[f].sum())
    assert seen == {n: int(m.sum()) for n, m in expected.items()}


def test_export_writes_seg_files_that_verify(dataset: Path, tmp_path: Path) -> None:
    res = export_packages(dataset / "cases", tmp_path / "export", "1.0", force=True, reason="integration test")
    assert len(res.seg_files) == 3 and res.skipped == []
    for rel in res.seg_files:
        assert [ln for ln in _dciodvfy(res.version_dir / rel) if ln.startswith("Error")] == []
    assert verify_export(tmp_path / "export") == []
