"""DICOM SEG reading (real SEG from pydicom-data, one written by highdicom), grid placement, `metrics seg`."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid
from typer.testing import CliRunner

from aimd.cli.metrics import app
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.seg_read import is_dicom_seg, place_on_grid, read_seg
from aimd.imaging.volume import Volume
from aimd.metrics import segmentation_metrics


def test_real_seg_voxels_sit_where_each_frame_says() -> None:
    path = get_testdata_file("liver.dcm")  # pydicom-data: 3-frame binary SEG of a liver
    vol = read_seg(path)
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array
    assert vol.shape == (3, 512, 512) and vol.metadata["segments"] == {1: "Liver"}
    plane = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    orientation = np.array(plane.ImageOrientationPatient, dtype=float)
    assert np.allclose(vol.direction[:, 0], orientation[:3])
    assert np.allclose(vol.direction[:, 1], orientation[3:])
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        ipp = np.array(item.PlanePositionSequence[0].ImagePositionPatient, dtype=float)
        i, j, k = np.rint(vol.world_to_index(ipp)).astype(int)
        assert (i, j) == (0, 0)
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        assert np.array_equal(vol.array[k] == number, frames[f].astype(bool))


def _ct_series(folder: Path, n: int = 5) -> list[pydicom.Dataset]:
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series = generate_uid()
    out = []
    for i in range(n):
        ds = copy.deepcopy(template)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series
        ds.InstanceNumber = i + 1
        ipp = [float(v) for v in template.ImagePositionPatient]
        ipp[2] += 5.0 * i
        ds.ImagePositionPatient = ipp
        ds.SliceThickness = 5.0
        ds.save_as(folder / f"ct{i}.dcm")
        out.append(ds)
    return out


def write_seg(path: Path, sources: list[pydicom.Dataset], labels: np.ndarray) -> None:
    """A BINARY SEG with one segment per non-zero label, written by highdicom."""
    algo = hd.AlgorithmIdentificationSequence(
        name="aimd-test", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=int(n),
            segment_label=f"lesion {n}",
            segmented_property_category=codes.cid7150.Tissue,
            segmented_property_type=codes.cid7166.ConnectiveTissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for n in sorted(set(np.unique(labels)) - {0})
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=labels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="aimd",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    seg.save_as(path)


def test_highdicom_seg_round_trips_onto_the_ct_grid(tmp_path: Path) -> None:
    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    sources = _ct_series(ct_dir)
    labels = np.zeros((5, 128, 128), np.uint8)
    labels[1:3, 30:60, 40:70] = 1
    labels[2:4, 80:90, 80:100] = 2
    write_seg(tmp_path / "seg.dcm", sources, labels)
    assert is_dicom_seg(tmp_path / "seg.dcm") and not is_dicom_seg(ct_dir / "ct0.dcm")
    seg = read_seg(tmp_path / "seg.dcm")
    ct = read_volume(ct_dir)
    assert seg.shape[0] == 3  # only the segmented slices are stored
    placed = place_on_grid(seg, ct)
    assert placed.same_grid(ct)
    assert np.array_equal(placed.array, labels)


def test_place_on_grid_flips_and_refuses_real_resampling() -> None:
    target = Volume(np.zeros((4, 6, 5), np.uint8), spacing=(1.0, 2.0, 3.0), origin=(10.0, 20.0, 30.0))
    labels = np.zeros((4, 6, 5), np.uint8)
    labels[1, 2, 3] = 7
    # the same voxels stored with the z axis reversed
    flipped = Volume(
        labels[::-1].copy(),
        spacing=(1.0, 2.0, 3.0),
        origin=(10.0, 20.0, 30.0 + 3 * 3.0),
        direction=np.diag([1.0, 1.0, -1.0]),
    )
    assert np.array_equal(place_on_grid(flipped, target).array, labels)
    with pytest.raises(GeometryError, match="differs from the reference grid"):
        place_on_grid(Volume(labels, spacing=(1.0, 1.0, 3.0)), target)
    with pytest.raises(GeometryError, match="off the reference grid"):
        place_on_grid(Volume(labels, spacing=(1.0, 2.0, 3.0), origin=(10.5, 20.0, 30.0)), target)
    with pytest.raises(GeometryError, match="outside the reference image"):
        place_on_grid(Volume(labels, spacing=(1.0, 2.0, 3.0), origin=(10.0, 20.0, 39.0)), target)
    shifted = place_on_grid(Volume(labels, spacing=(1.0, 2.0, 3.0), origin=(10.0, 20.0, 33.0)), target)
    assert shifted.array[2, 2, 3] == 7 and np.count_nonzero(shifted.array) == 1


def test_read_seg_rejects_other_files() -> None:
    with pytest.raises(InvalidInputError, match="not a DICOM SEG"):
        read_seg(get_testdata_file("CT_small.dcm"))


def test_seg_reads_dicom_seg_against_a_nifti_on_the_ct_grid(tmp_path: Path) -> None:
    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    sources = _ct_series(ct_dir)
    labels = np.zeros((5, 128, 128), np.uint8)
    labels[1:4, 30:60, 40:70] = 1
    write_seg(tmp_path / "pred_seg.dcm", sources, labels)
    ct = read_volume(ct_dir)
    ref_labels = labels.copy()
    ref_labels[1:4, 30:60, 40:72] = 1
    write_nifti(ct.with_array(ref_labels), tmp_path / "ref.nii.gz")
    args = ["seg", str(tmp_path / "ref.nii.gz"), str(tmp_path / "pred_seg.dcm"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    expected = segmentation_metrics(ref_labels, labels, ct.spacing[::-1])[1]
    row = out["cases"][0]["labels"]["1"]
    assert row["dice"] == pytest.approx(expected.dice) and row["hd"] == pytest.approx(expected.hd, rel=1e-5)


def test_overlapping_segments_are_read_one_selection_at_a_time(tmp_path: Path) -> None:
    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    sources = _ct_series(ct_dir)
    organ = np.zeros((5, 128, 128), bool)
    organ[1:4, 20:100, 20:100] = True
    lesion = np.zeros_like(organ)
    lesion[2:4, 40:60, 50:70] = True  # inside the organ: the two segments overlap
    algo = hd.AlgorithmIdentificationSequence(
        name="aimd-test", version="1", family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=name,
            segmented_property_category=codes.cid7150.Tissue,
            segmented_property_type=codes.cid7166.ConnectiveTissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for n, name in ((1, "organ"), (2, "lesion"))
    ]
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=np.stack([organ, lesion], axis=-1).astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=100,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="aimd",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
    )
    path = tmp_path / "overlap.dcm"
    seg.save_as(path)
    with pytest.raises(InvalidInputError, match="overlap"):
        read_seg(path)
    with pytest.raises(InvalidInputError, match="not in this SEG"):
        read_seg(path, segments=[7])
    ct = read_volume(ct_dir)
    for number, mask in ((1, organ), (2, lesion)):
        placed = place_on_grid(read_seg(path, segments=[number]), ct)
        assert np.array_equal(placed.array == number, mask)
        assert set(np.unique(placed.array)) == {0, number}


def test_seg_on_differing_grids_notes_how_it_aligned_them(tmp_path: Path) -> None:
    runner = CliRunner()
    ref = np.zeros((6, 8, 8), np.uint8)
    ref[2:4, 2:6, 2:6] = 1
    write_nifti(Volume(ref, spacing=(1, 1, 2)), tmp_path / "ref.nii.gz")
    write_nifti(Volume(ref, spacing=(1, 1, 2)), tmp_path / "same.nii.gz")
    crop = ref[1:5].copy()  # the prediction covers slices 1-4 only
    write_nifti(Volume(crop, spacing=(1, 1, 2), origin=(0, 0, 2)), tmp_path / "crop.nii.gz")
    same = json.loads(
        runner.invoke(app, ["seg", str(tmp_path / "ref.nii.gz"), str(tmp_path / "same.nii.gz"), "--json"]).stdout
    )
    assert same["notes"] == []
    result = runner.invoke(app, ["seg", str(tmp_path / "ref.nii.gz"), str(tmp_path / "crop.nii.gz"), "--json"])
    out = json.loads(result.stdout)
    assert len(out["notes"]) == 1
    assert "re-indexing" in out["notes"][0] and "128 voxels" in out["notes"][0]
    text = runner.invoke(
        app, ["seg", str(tmp_path / "ref.nii.gz"), str(tmp_path / "crop.nii.gz")], terminal_width=80
    ).stdout
    assert "note: " in text and "no interpolation" in text
