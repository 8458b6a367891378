"""Pieces of aimd's third-party model pipeline, checked against nibabel, SciPy and PyTorch themselves."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.testing import data_path
from scipy import ndimage

from aimd.core.errors import GeometryError, IntegrityError, InvalidInputError, SchemaError
from aimd.evaluation.external_data import load_volume_eval_data, perturb_volume, write_mask_dataset
from aimd.imaging.io import read_volume, write_volume
from aimd.imaging.volume import Volume
from aimd.models.external import (
    Orientation,
    PreparedVolume,
    ProbabilityOutputPredictor,
    brain_box,
    deepbet_normalise,
    deepbet_specs,
    largest_component,
)
from aimd.models.specs import InputSpec, OutputSpec

ANATOMICAL = Path(data_path) / "anatomical.nii"


@pytest.mark.parametrize("flip_axes", [(), (0,), (0, 2)])
def test_orientation_matches_nibabel_closest_canonical(tmp_path: Path, flip_axes: tuple[int, ...]) -> None:
    img = nib.load(ANATOMICAL)
    data = np.asarray(img.dataobj)
    affine = img.affine.copy()
    for ax in flip_axes:  # store the same anatomy with reversed axes: the canonical array must not change
        data = np.flip(data, axis=ax)
        affine[:3, 3] += affine[:3, ax] * (img.shape[ax] - 1)
        affine[:3, ax] *= -1
    path = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), path)
    vol = read_volume(path)
    expected = np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj)
    got = Orientation.of(vol).to_ras(vol.array)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, np.asarray(nib.as_closest_canonical(img).dataobj))
    np.testing.assert_array_equal(Orientation.of(vol).from_ras(got), vol.array)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_probability_adapter_reproduces_softmax_and_rejects_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(1, 2, 3, padding=1)
    soft = torch.jit.script(torch.nn.Sequential(conv, torch.nn.Softmax(dim=1)))
    raw = torch.jit.script(torch.nn.Sequential(conv))
    torch.jit.save(soft, str(tmp_path / "soft.pt"))
    torch.jit.save(raw, str(tmp_path / "raw.pt"))
    spec_in = InputSpec(modality="MR", dims=3, patch_size=(8, 8, 8), value_range=(-5.0, 5.0))
    spec_out = OutputSpec(task="segmentation", labels={0: "bg", 1: "fg"}, activation="softmax")
    x = np.random.default_rng(1).normal(size=(2, 1, 8, 8, 8)).astype(np.float32)
    with torch.inference_mode():
        direct = soft(torch.from_numpy(x)).numpy()
    got = ProbabilityOutputPredictor(tmp_path / "soft.pt", spec_in, spec_out).predict(x)
    assert np.abs(got - direct).max() < 1e-6
    with pytest.raises(InvalidInputError, match="not softmax probabilities"):
        ProbabilityOutputPredictor(tmp_path / "raw.pt", spec_in, spec_out).predict(x)


def test_normalisation_matches_a_torch_reference() -> None:
    x = np.random.default_rng(2).gamma(2.0, 30.0, size=(16, 16, 16)).astype(np.float32)
    low, high = np.quantile(x, (0.005, 0.995))
    t = ((torch.from_numpy(x) - float(low)) / float(high - low)).clamp(0, 1)
    ref = ((t - t.mean()) / t.std() * 0.226 + 0.449).numpy()
    np.testing.assert_allclose(deepbet_normalise(x, float(low), float(high)), ref, atol=1e-5)
    lo, hi = deepbet_specs(96)[0].value_range
    assert lo <= float(ref.min()) and float(ref.max()) <= hi
    with pytest.raises(InvalidInputError, match="constant"):
        deepbet_normalise(x, 3.0, 3.0)


def test_largest_component_and_box_against_scipy() -> None:
    rng = np.random.default_rng(3)
    mask = rng.random((20, 20, 20)) > 0.7
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    np.testing.assert_array_equal(largest_component(mask), labels == 1 + int(np.argmax(sizes)))
    coarse = np.zeros((16, 16, 16), bool)
    coarse[4:12, 2:10, 6:14] = True
    box = brain_box(coarse, (32, 48, 16), margin=0.1)
    # extent 8 planes per axis, centre 8 / 6 / 10 coarse voxels, scaled by 2, 3 and 1 and grown by 20 %
    assert box == (slice(6, 25, None), slice(3, 32, None), slice(5, 15, None))
    with pytest.raises(InvalidInputError, match="no brain"):
        brain_box(np.zeros((4, 4, 4), bool), (8, 8, 8))


def test_prepared_volume_maps_labels_both_ways() -> None:
    vol = Volume(np.zeros((6, 8, 10), np.int16))
    orient = Orientation.of(vol)
    box = (slice(2, 8), slice(1, 7), slice(0, 6))
    prepared = PreparedVolume(np.zeros((1, 12, 12, 12), np.float32), box, (10, 8, 6), orient)
    labels = np.zeros((6, 8, 10), np.uint8)
    labels[1:4, 2:5, 3:6] = 1
    grid = prepared.labels_to_grid(Volume(labels))
    assert grid.shape == (12, 12, 12) and grid.sum() > 0
    np.testing.assert_array_equal(prepared.grid_to_volume(grid), labels)
    assert prepared.outside_fraction(Volume(labels)) == 0.0


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(4)
    arr = np.zeros((20, 20, 20), np.int16)
    arr[4:16, 4:16, 4:16] = 100
    arr = (arr + rng.normal(0, 5, arr.shape)).clip(0).astype(np.int16)
    write_volume(Volume(arr, spacing=(2.0, 2.0, 2.0)), tmp_path / "img.nii.gz")
    write_volume(Volume(arr > 50, spacing=(2.0, 2.0, 2.0)), tmp_path / "mask.nii.gz")
    return tmp_path / "img.nii.gz", tmp_path / "mask.nii.gz"


def test_perturbed_noise_has_the_recorded_magnitude(tmp_path: Path) -> None:
    img, _ = _pair(tmp_path)
    vol = read_volume(img)
    flat = dataclasses.replace(vol, array=np.full(vol.shape, 120, np.int16))
    out, record = perturb_volume(flat, "noise", 1.0, seed=7)
    diff = out.array.astype(np.float64) - 120
    assert record["intensity_scale"] == 120.0 and record["parameters"] == {"std": 0.1}
    assert abs(diff.std() / 120.0 - 0.1) < 0.01 and abs(diff.mean()) < 1.0
    again, _ = perturb_volume(flat, "noise", 1.0, seed=7)
    np.testing.assert_array_equal(again.array, out.array)


def test_mask_dataset_round_trip_and_errors(tmp_path: Path) -> None:
    img, mask = _pair(tmp_path)
    path = write_mask_dataset(img, mask, tmp_path / "ds", case_id="c1", label="cube", perturbations=[("blur", 1.0)])
    cases = {c["id"]: c for c in json.loads(path.read_text())["cases"]}
    assert cases["c1"]["split"] == "test" and cases["c1-blur-1"]["perturbation"]["parameters"] == {"std": 2.0}
    assert read_volume(tmp_path / "ds" / "cases" / "c1" / "image.nii.gz").modality == "MR"
    with pytest.raises(InvalidInputError, match="already exists"):
        write_mask_dataset(img, mask, tmp_path / "ds")
    write_volume(Volume(np.zeros((3, 3, 3), np.uint8)), tmp_path / "small.nii.gz")
    with pytest.raises(GeometryError, match="differs from image shape"):
        write_mask_dataset(img, tmp_path / "small.nii.gz", tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    (tmp_path / "ds" / "cases" / "c1" / "image.nii.gz").write_bytes(b"changed")
    with pytest.raises(IntegrityError, match="SHA-256"):
        load_volume_eval_data(tmp_path / "ds", _NoPipeline())


def test_loader_refuses_other_dataset_formats(tmp_path: Path) -> None:
    (tmp_path / "dataset.json").write_text('{"format": "aimd-phantom-dataset", "label_map": {}, "cases": []}')
    with pytest.raises(SchemaError, match="aimd-mask-dataset"):
        load_volume_eval_data(tmp_path, _NoPipeline())


class _NoPipeline:
    """Never reached: the loader must fail on the dataset before preparing any case."""

    predictor = None

    def prepare(self, volume: Volume, *, modality: str | None = None, where: str = "input") -> PreparedVolume:
        raise AssertionError("the loader prepared a case it should have refused")
