"""Segmentation metrics pinned to MONAI (Dice, HD, HD95, ASSD with spacing) and to first principles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance
from scipy import ndimage

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.metrics import (
    OverlapCounts,
    SegmentationAccumulator,
    conformity,
    conformity_classic,
    dice,
    foreground_boxes,
    image_diagonal_mm,
    iou,
    mask_border,
    pixel_accuracy,
    segmentation_metrics,
    surface_distances,
    volume_ml,
)
from aimd.metrics.surface import nearest_distances


def _monai(ref: np.ndarray, pred: np.ndarray, spacing: np.ndarray) -> dict[str, float]:
    y = torch.from_numpy(ref[None, None].astype(np.float32))
    yp = torch.from_numpy(pred[None, None].astype(np.float32))
    sp = spacing.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "dice": compute_dice(yp, y, include_background=True).item(),
            "hd": compute_hausdorff_distance(yp, y, include_background=True, spacing=sp).item(),
            "hd95": compute_hausdorff_distance(yp, y, include_background=True, percentile=95, spacing=sp).item(),
            "assd": compute_average_surface_distance(yp, y, include_background=True, symmetric=True, spacing=sp).item(),
        }


def _random_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    kind = rng.integers(0, 3)
    if kind == 0:  # speckle: many tiny components, borders everywhere
        return rng.random(shape) < rng.uniform(0.05, 0.5)
    mask = np.zeros(shape, bool)
    for _ in range(rng.integers(1, 4)):  # boxes, some touching the image edge
        lo = [int(rng.integers(0, s)) for s in shape]
        hi = [lo_i + int(rng.integers(1, s + 1)) for lo_i, s in zip(lo, shape, strict=True)]
        mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    if kind == 2:
        mask = ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 3)))
    return mask


def test_matches_monai_on_many_random_2d_and_3d_cases() -> None:
    rng = np.random.default_rng(20240601)
    compared = 0
    for _ in range(150):
        ndim = int(rng.choice([2, 3]))
        shape = tuple(int(s) for s in rng.integers(4, 24 if ndim == 2 else 14, ndim))
        spacing = rng.uniform(0.3, 3.0, ndim)
        ref, pred = _random_mask(rng, shape), _random_mask(rng, shape)
        if not ref.any() or not pred.any():
            continue
        ours = segmentation_metrics(ref, pred, spacing)[1]
        theirs = _monai(ref, pred, spacing)
        for name in ("dice", "hd", "hd95", "assd"):
            expected = pytest.approx(theirs[name], rel=1e-5, abs=1e-5)
            assert getattr(ours, name) == expected, (name, shape, spacing)
        compared += 1
    assert compared > 120


def test_multilabel_equals_binary_per_label_and_sparse_far_apart_objects() -> None:
    rng = np.random.default_rng(3)
    ref = np.zeros((30, 60, 60), np.uint8)
    pred = np.zeros_like(ref)
    for label, (z, y, x) in enumerate([(3, 5, 5), (25, 50, 52), (15, 30, 8)], start=1):
        ref[z - 2 : z + 2, y - 3 : y + 4, x - 3 : x + 3] = label
        pred[z - 2 + rng.integers(0, 2) : z + 2, y - 3 : y + 3, x - 2 : x + 4] = label
    pred[28:30, 0:3, 57:60] = 1  # a far false positive touching the image corner
    spacing = np.array([2.5, 0.7, 0.9])
    res = segmentation_metrics(ref, pred, spacing)
    assert sorted(res) == [1, 2, 3]
    for label, m in res.items():
        theirs = _monai(ref == label, pred == label, spacing)
        assert m.dice == pytest.approx(theirs["dice"], rel=1e-6)
        assert m.hd == pytest.approx(theirs["hd"], rel=1e-5)
        assert m.hd95 == pytest.approx(theirs["hd95"], rel=1e-5)
        assert m.assd == pytest.approx(theirs["assd"], rel=1e-5)
        counts = OverlapCounts.from_masks(ref == label, pred == label)
        assert m.counts == counts


@pytest.mark.parametrize("backend", ["scipy", "pykdtree"])
def test_kdtree_backends_give_exact_nearest_distances(backend: str) -> None:
    if backend == "pykdtree":
        pytest.importorskip("pykdtree")
    rng = np.random.default_rng(6)
    for _ in range(40):
        sp = rng.uniform(0.3, 3.0, 3)
        src = rng.integers(0, 12, (int(rng.integers(1, 80)), 3)) * sp  # grid points: many exact ties
        tgt = rng.integers(0, 12, (int(rng.integers(1, 80)), 3)) * sp
        brute = np.sqrt(((src[:, None, :] - tgt[None, :, :]) ** 2).sum(-1)).min(axis=1)
        np.testing.assert_allclose(nearest_distances(src, tgt, backend), brute, rtol=1e-12, atol=0)


def test_border_is_mask_minus_scipy_erosion() -> None:
    rng = np.random.default_rng(5)
    for _ in range(30):
        m = rng.random((7, 9, 8)) < 0.6
        assert np.array_equal(mask_border(m), m & ~ndimage.binary_erosion(m))


def test_foreground_boxes_are_disjoint_and_cover_every_voxel() -> None:
    rng = np.random.default_rng(11)
    for _ in range(20):
        a = (rng.random((40, 50, 45)) < 0.002).astype(np.uint8)
        a[5:30, 3:6, 10:12] = 2  # an elongated object spanning many blocks
        boxes = foreground_boxes(a)
        covered = np.zeros(a.shape, np.int32)
        for b in boxes:
            covered[b] += 1
        assert covered.max() == 1
        assert np.all(covered[a != 0] == 1)
        for b in boxes:  # one-voxel margin of background (or the image edge)
            assert np.array_equal(mask_border(a[b] != 0), (mask_border(a != 0))[b])


def test_both_empty_gives_perfect_scores_and_zero_distances() -> None:
    z = np.zeros((5, 6, 7), np.uint8)
    m = segmentation_metrics(z, z, (1.0, 1.0, 1.0), labels=[1])[1]
    assert (m.dice, m.iou, m.precision, m.recall, m.conformity, m.conformity_classic) == (1, 1, 1, 1, 1, 1)
    assert (m.hd, m.hd95, m.assd) == (0.0, 0.0, 0.0)
    assert m.empty == "both" and not m.distance_worst_case


@pytest.mark.parametrize("empty_side", ["ref", "pred"])
def test_one_empty_gives_zero_overlap_and_flagged_diagonal(empty_side: str) -> None:
    full = np.zeros((4, 10, 12), np.uint8)
    full[1:3, 2:5, 2:6] = 1
    spacing = (3.0, 0.5, 0.8)
    ref, pred = (np.zeros_like(full), full) if empty_side == "ref" else (full, np.zeros_like(full))
    m = segmentation_metrics(ref, pred, spacing)[1]
    diag = float(np.sqrt((4 * 3.0) ** 2 + (10 * 0.5) ** 2 + (12 * 0.8) ** 2))
    assert image_diagonal_mm(full.shape, spacing) == pytest.approx(diag)
    assert (m.dice, m.iou, m.precision, m.recall) == (0.0, 0.0, 0.0, 0.0)
    assert (m.hd, m.hd95, m.assd) == (pytest.approx(diag),) * 3
    assert m.empty == empty_side and m.distance_worst_case
    assert m.conformity is None and m.conformity_classic is None
    d = m.to_dict()
    assert d["distance_worst_case"] is True and all(np.isfinite(d[k]) for k in ("hd", "hd95", "assd", "dice"))


def test_overlap_formulas_against_counts_written_out() -> None:
    ref = np.array([[1, 1, 1, 1, 0, 0, 0, 0]])
    pred = np.array([[0, 1, 1, 1, 1, 1, 0, 0]])  # TP 3, FP 2, FN 1, TN 2
    assert dice(ref, pred) == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))
    assert iou(ref, pred) == pytest.approx(3 / 6)
    assert pixel_accuracy(ref, pred) == pytest.approx(5 / 8)
    assert conformity(ref, pred) == pytest.approx(1 - 2 / 3)  # 001 D.5 as written
    assert conformity_classic(ref, pred) == pytest.approx(1 - 3 / 3)
    m = segmentation_metrics(ref, pred)[1]
    assert m.to_dict()["area_ref_mm2"] == 4.0


def test_volumes_in_ml_use_the_voxel_volume() -> None:
    a = np.zeros((10, 20, 20), np.uint8)
    a[:5, :10, :10] = 1  # 500 voxels
    b = np.zeros_like(a)
    b[:5, :10, :8] = 1  # 400 voxels
    m = segmentation_metrics(a, b, (2.0, 1.0, 0.5))[1].to_dict()
    assert m["volume_ref_ml"] == pytest.approx(500 * 1.0 / 1000)
    assert m["volume_pred_ml"] == pytest.approx(0.4)
    assert m["volume_diff_ml"] == pytest.approx(-0.1)
    assert volume_ml(a, (2.0, 1.0, 0.5)) == pytest.approx(0.5)


def test_spacing_order_is_array_axis_order() -> None:
    a = np.zeros((9, 9, 9), bool)
    a[3:6, 3:6, 3:6] = True
    shifted_z = np.roll(a, 1, axis=0)
    assert surface_distances(a, shifted_z, (4.0, 1.0, 1.0)).hausdorff == pytest.approx(4.0)
    assert surface_distances(a, shifted_z, (1.0, 1.0, 4.0)).hausdorff == pytest.approx(1.0)


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(GeometryError, match="differ in shape"):
        segmentation_metrics(np.zeros((3, 4, 5)), np.zeros((3, 4, 6)))
    with pytest.raises(InvalidInputError, match="non-integer"):
        segmentation_metrics(np.full((3, 4, 5), 0.5), np.zeros((3, 4, 5)))
    with pytest.raises(InvalidInputError, match="negative"):
        segmentation_metrics(np.full((3, 4, 5), -1), np.zeros((3, 4, 5)))
    with pytest.raises(GeometryError, match="spacing"):
        segmentation_metrics(np.zeros((3, 4, 5)), np.zeros((3, 4, 5)), spacing=(1.0, 1.0))
    with pytest.raises(InvalidInputError, match="positive"):
        segmentation_metrics(np.zeros((3, 4, 5)), np.zeros((3, 4, 5)), labels=[0])


def test_accumulator_summary_over_cases() -> None:
    acc = SegmentationAccumulator()
    base = np.zeros((3, 12, 12), np.uint8)
    base[1, 2:8, 2:8] = 1
    dices = []
    for shift in range(5):
        pred = np.roll(base, shift, axis=2)
        dices.append(dice(base, pred))
        acc.update(f"c{shift}", base, pred, (1.0, 1.0, 1.0))
    out = acc.aggregate()
    s = out["summary"]["1"]["dice"]
    assert s["n"] == 5 and s["mean"] == pytest.approx(np.mean(dices))
    assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    assert [c["case"] for c in out["cases"]] == [f"c{i}" for i in range(5)]
    with pytest.raises(InvalidInputError, match="twice"):
        acc.update("c0", base, base)
    acc.reset()
    assert acc.aggregate()["cases"] == []


masks_2d = arrays(np.bool_, st.tuples(st.integers(2, 9), st.integers(2, 9)), elements=st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), sp=st.tuples(st.floats(0.2, 4.0), st.floats(0.2, 4.0)))
def test_properties_symmetry_bounds_padding(data: st.DataObject, sp: tuple[float, float]) -> None:
    ref = data.draw(masks_2d)
    pred = data.draw(arrays(np.bool_, ref.shape, elements=st.booleans()))
    ab = segmentation_metrics(ref, pred, sp, labels=[1])[1]
    ba = segmentation_metrics(pred, ref, sp, labels=[1])[1]
    for name in ("dice", "iou", "hd", "hd95", "assd", "pixel_accuracy"):
        assert getattr(ab, name) == pytest.approx(getattr(ba, name), abs=1e-12)
    assert ab.precision == pytest.approx(ba.recall)
    assert 0.0 <= ab.iou <= ab.dice <= 1.0
    assert 0.0 <= ab.hd95 <= ab.hd + 1e-9
    assert 0.0 <= ab.assd <= ab.hd + 1e-9
    if ref.any() and pred.any():
        padded = segmentation_metrics(np.pad(ref, 3), np.pad(pred, 3), sp, labels=[1])[1]
        for name in ("dice", "iou", "hd", "hd95", "assd", "precision", "recall"):
            assert getattr(padded, name) == pytest.approx(getattr(ab, name), abs=1e-9)
