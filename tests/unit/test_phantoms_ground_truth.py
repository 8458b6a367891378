"""Phantom ground truth checked independently: masks from lesion specs, HU per tissue, DICOM == NIfTI,
the radiograph against a Beer–Lambert projection of ct.nii.gz, nodule boxes against projected masks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from aimd.phantoms import generate_dataset

RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "ds"
    generate_dataset(out, cases=6, seed=4, size=64, sites=3, workers=2)
    return out


def _cases(ds: Path) -> list[Path]:
    return sorted((ds / "cases").iterdir())


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Data as (z, y, x) and the 4x4 affine mapping (i, j, k) to LPS."""
    img = nib.load(path)
    affine = img.affine.copy()
    affine[:3] = RAS_TO_LPS @ affine[:3]
    return np.asarray(img.dataobj).transpose(2, 1, 0), affine


def _world_grid(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    ijk = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(np.float64)
    return (ijk @ affine.T)[..., :3]


def test_every_lesion_type_and_label_present(ds: Path) -> None:
    types = {le["type"] for c in _cases(ds) for le in _json(c / "lesions.json")["lesions"]}
    assert types == {"solid_nodule", "ground_glass_nodule", "liver_tumour"}
    labels = set()
    for case in _cases(ds):
        labels |= set(np.unique(_nifti(case / "labels.nii.gz")[0]).tolist())
    assert labels == set(range(7))


def test_lesion_masks_are_the_specified_spheres(ds: Path) -> None:
    for case in _cases(ds):
        inst, affine = _nifti(case / "lesions.nii.gz")
        labels, _ = _nifti(case / "labels.nii.gz")
        world = _world_grid(affine, inst.shape)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        half_diag = 0.5 * float(np.linalg.norm(spacing))
        for le in _json(case / "lesions.json")["lesions"]:
            r = le["diameter_mm"] / 2
            dist = np.linalg.norm(world - np.asarray(le["centre_lps_mm"]), axis=-1)
            mask = inst == le["instance"]
            clear = np.abs(dist - r) > 1e-3  # voxel centres on the surface itself are ambiguous to float32
            np.testing.assert_array_equal(mask[clear], (dist <= r)[clear])
            assert np.all(labels[mask] == le["label"])
            voxel_ml = float(np.prod(spacing)) / 1000
            assert le["voxel_count"] == int(mask.sum())
            assert le["volume_ml"] == pytest.approx(mask.sum() * voxel_ml, rel=1e-4)
            sphere = lambda rad: 4 / 3 * math.pi * max(rad, 0.0) ** 3 / 1000  # noqa: E731
            assert sphere(r - half_diag) <= le["volume_ml"] <= sphere(r + half_diag)
            assert le["volume_ml_analytic"] == pytest.approx(sphere(r), rel=1e-4)
            assert 4 <= le["diameter_mm"] <= 30


def test_lesions_inside_their_organ_and_lobe_named(ds: Path) -> None:
    for case in _cases(ds):
        for le in _json(case / "lesions.json")["lesions"]:
            if le["organ"] == "lung":
                assert le["lobe"] in {"RUL", "RML", "RLL", "LUL", "LLL"}
                assert (le["lobe"][0] == "R") == (le["centre_lps_mm"][0] < 0)  # LPS: patient right is -x
            else:
                assert le["lobe"].startswith("LIVER_") and le["segment"] in {f"S{i}" for i in range(1, 9)}


def test_hu_ranges_per_tissue(ds: Path) -> None:
    for case in _cases(ds):
        ct, _ = _nifti(case / "ct.nii.gz")
        labels, _ = _nifti(case / "labels.nii.gz")
        assert ct.dtype == np.int16 and ct.min() >= -1024
        median = {lab: float(np.median(ct[labels == lab])) for lab in range(5)}
        assert median[0] < -950
        assert -130 < median[1] < 80
        assert -900 < median[2] < -780
        assert 35 < median[3] < 90
        assert median[4] > 150
        inst, affine = _nifti(case / "lesions.nii.gz")
        world = _world_grid(affine, ct.shape)
        liver_median = median[3]
        for le in _json(case / "lesions.json")["lesions"]:
            dist = np.linalg.norm(world - np.asarray(le["centre_lps_mm"]), axis=-1)
            core = dist <= le["diameter_mm"] / 2 - 1.5
            if core.sum() < 3:
                continue
            value = float(np.median(ct[core]))
            if le["type"] == "ground_glass_nodule":
                assert -720 < value < -480
            elif le["type"] == "solid_nodule":
                assert -20 < value < 100
            elif le["density"] == "hypodense":
                assert value < liver_median - 10
            else:
                assert value > liver_median + 10


def test_dicom_series_equals_nifti_in_lps(ds: Path) -> None:
    for case in _cases(ds)[:3]:
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(case / "ct")))
        img = reader.Execute()
        ct, affine = _nifti(case / "ct.nii.gz")
        np.testing.assert_array_equal(sitk.GetArrayFromImage(img), ct)
        rng = np.random.default_rng(0)
        points = [(0, 0, 0), (63, 63, 63), *(tuple(int(v) for v in rng.integers(0, 64, 3)) for _ in range(9))]
        for idx in points:
            np.testing.assert_allclose(img.TransformIndexToPhysicalPoint(idx), affine[:3] @ [*idx, 1], atol=1e-4)
        slices = sorted((pydicom.dcmread(p) for p in (case / "ct").iterdir()), key=lambda d: int(d.InstanceNumber))
        for k, d in enumerate(slices):
            hu = d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept)
            np.testing.assert_array_equal(hu, ct[k])
            np.testing.assert_allclose([float(v) for v in d.ImagePositionPatient], affine[:3] @ [0, 0, k, 1], atol=1e-4)


def test_dicom_header_identity_matches_clinical(ds: Path) -> None:
    case = _cases(ds)[0]
    clinical = _json(case / "clinical.json")
    ct = pydicom.dcmread(case / "ct" / "IM00001.dcm")
    dx = pydicom.dcmread(case / "dx.dcm")
    for d in (ct, dx):
        assert d.PatientID == clinical["patient"]["record_number"]
        assert str(d.PatientName).split("=")[1].replace("^", "") == clinical["patient"]["name_zh"]
        assert d.PatientBirthDate == clinical["patient"]["birth_date"].replace("-", "")
        assert d.StudyInstanceUID == clinical["keys"]["study_instance_uid"]
        assert d.InstitutionName and d.StudyDate == clinical["scan_date"].replace("-", "")
    assert ct.SeriesInstanceUID != dx.SeriesInstanceUID


def test_radiograph_is_beer_lambert_projection(ds: Path) -> None:
    for case in _cases(ds):
        ct, affine = _nifti(case / "ct.nii.gz")
        dx = pydicom.dcmread(case / "dx.dcm")
        meta = _json(case / "dx_boxes.json")
        assert dx.Modality == "DX" and dx.PresentationIntentType == "FOR PRESENTATION"
        assert dx.pixel_array.shape == (meta["rows"], meta["columns"]) == (meta["rows"], ct.shape[2])
        sx, sy, sz = np.linalg.norm(affine[:3, :3], axis=0)
        mu_w = meta["projection"]["mu_water_per_mm"]
        line = np.clip(mu_w * (1 + ct / 1000.0), 0, None).sum(axis=1) * sy  # (z, x)
        k_of_row = (ct.shape[0] - 1) - np.arange(meta["rows"]) * sx / sz  # row 0 = most superior slice
        slices = np.arange(ct.shape[0])
        expected = np.stack([np.interp(k_of_row, slices, line[:, i]) for i in range(ct.shape[2])], axis=1)
        observed = dx.pixel_array.astype(float) / 4095 * meta["projection"]["log_signal_full_scale"]
        assert np.corrcoef(observed.ravel(), expected.ravel())[0, 1] > 0.99
        assert np.median(np.abs(observed - expected)) < 0.02


def test_dx_boxes_contain_projected_nodules(ds: Path) -> None:
    seen = 0
    for case in _cases(ds):
        inst, affine = _nifti(case / "lesions.nii.gz")
        sx, _, sz = np.linalg.norm(affine[:3, :3], axis=0)
        boxes = {b["lesion_id"]: b for b in _json(case / "dx_boxes.json")["boxes"]}
        for le in _json(case / "lesions.json")["lesions"]:
            assert (le["id"] in boxes) == (le["organ"] == "lung")
            if le["organ"] != "lung":
                continue
            kk, _, ii = np.nonzero(inst == le["instance"])
            cols = ii + 0.5
            rows = ((inst.shape[0] - 1) - kk) * sz / sx + 0.5
            x0, y0, x1, y1 = boxes[le["id"]]["xyxy"]
            assert cols.min() >= x0 - 1e-6 and cols.max() <= x1 + 1e-6
            assert rows.min() >= y0 - 1e-6 and rows.max() <= y1 + 1e-6
            assert x1 - x0 <= cols.max() - cols.min() + 2.0 + 1e-6  # tight: within one pixel each side
            seen += 1
    assert seen >= 2


def test_sites_differ_as_profiled(ds: Path) -> None:
    """Per-site scanner, slice thickness and noise (the domain shift of multi-site data)."""
    profiles = {p["site_id"]: p for p in _json(ds / "dataset.json")["sites"]}
    for entry in _json(ds / "dataset.json")["cases"]:
        site = profiles[entry["site"]]
        case = ds / "cases" / entry["id"]
        header = pydicom.dcmread(case / "ct" / "IM00001.dcm")
        assert (header.Manufacturer, header.ManufacturerModelName) == (site["manufacturer"], site["model"])
        assert float(header.SliceThickness) == site["slice_mm"]
        assert abs(float(header.PixelSpacing[0]) - site["pixel_mm"]) <= 0.03 * site["pixel_mm"] + 1e-3
        ct, _ = _nifti(case / "ct.nii.gz")
        labels, _ = _nifti(case / "labels.nii.gz")
        # liver in two adjacent slices: the noise is independent from slice to slice
        both = (labels[:-1] == 3) & (labels[1:] == 3)
        diff = ct[1:].astype(float) - ct[:-1].astype(float)
        sigma = float(np.std(diff[both])) / np.sqrt(2)
        assert sigma == pytest.approx(site["noise_hu"], rel=0.15)
