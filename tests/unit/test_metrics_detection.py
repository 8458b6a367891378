"""Detection metrics: AP/mAP pinned to pycocotools; matching, P/R (001 D.2–D.3), FPs/image, FROC."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.metrics import (
    DetectionAccumulator,
    ImageObjects,
    average_precision,
    box_iou,
    detection_counts,
    froc,
    load_coco,
    match_image,
)


def _random_coco(rng: np.random.Generator) -> tuple[dict, list]:
    n_img, n_cat = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    images = [{"id": i + 1} for i in range(n_img)]
    cats = [{"id": c + 1, "name": f"class{c}"} for c in range(n_cat)]
    anns, dets, aid = [], [], 1
    for im in images:
        for _ in range(rng.integers(0, 6)):
            x, y = rng.uniform(0, 100, 2)
            w, h = rng.uniform(2, 30, 2)
            c = int(rng.integers(1, n_cat + 1))
            anns.append(
                {
                    "id": aid,
                    "image_id": im["id"],
                    "category_id": c,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(rng.random() < 0.1),
                }
            )
            aid += 1
            for _ in range(rng.integers(0, 3)):  # jittered hits, sometimes with the wrong class
                j = rng.normal(0, 3, 4)
                cat = c if rng.random() < 0.85 else int(rng.integers(1, n_cat + 1))
                dets.append(
                    {
                        "image_id": im["id"],
                        "category_id": cat,
                        "bbox": [x + j[0], y + j[1], max(w + j[2], 0.5), max(h + j[3], 0.5)],
                        "score": float(np.round(rng.random(), 2)),
                    }
                )  # rounded: many score ties
        for _ in range(rng.integers(0, 3)):  # pure false positives
            x, y = rng.uniform(0, 100, 2)
            w, h = rng.uniform(2, 30, 2)
            dets.append(
                {
                    "image_id": im["id"],
                    "category_id": int(rng.integers(1, n_cat + 1)),
                    "bbox": [x, y, w, h],
                    "score": float(rng.random()),
                }
            )
    return {"images": images, "annotations": anns, "categories": cats}, dets


def _pycocotools(ref: dict, dets: list) -> tuple[float, float]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(ref)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def test_map_matches_pycocotools_on_many_random_cases() -> None:
    rng = np.random.default_rng(7)
    compared = 0
    for _ in range(60):
        ref, dets = _random_coco(rng)
        if not dets:
            continue
        data = load_coco(ref, dets)
        ours = average_precision(data.refs, data.dets)
        map50_95, map50 = _pycocotools(ref, dets)
        assert (ours.map50_95 if ours.map50_95 is not None else -1.0) == pytest.approx(map50_95, abs=1e-12)
        assert (ours.map50 if ours.map50 is not None else -1.0) == pytest.approx(map50, abs=1e-12)
        compared += 1
    assert compared > 40


def test_3d_boxes_with_a_common_depth_give_the_2d_result() -> None:
    rng = np.random.default_rng(8)
    ref, dets = _random_coco(rng)
    while not dets:
        ref, dets = _random_coco(rng)
    ref3, dets3 = copy.deepcopy(ref), copy.deepcopy(dets)
    for ann in ref3["annotations"] + dets3:
        x, y, w, h = ann["bbox"]
        ann["bbox"] = [x, y, 4.0, w, h, 2.5]  # same z-extent for all: 3-D IoU equals 2-D IoU
    two, three = load_coco(ref, dets), load_coco(ref3, dets3)
    a2, a3 = average_precision(two.refs, two.dets), average_precision(three.refs, three.dets)
    assert a3.map50_95 == pytest.approx(a2.map50_95, abs=1e-12)
    assert a3.map50 == pytest.approx(a2.map50, abs=1e-12)


def test_box_iou_by_brute_force_volume_counting() -> None:
    rng = np.random.default_rng(9)
    a = rng.integers(0, 6, (5, 6)).astype(float)
    b = rng.integers(0, 6, (4, 6)).astype(float)
    for boxes in (a, b):
        boxes[:, 3:] = boxes[:, :3] + rng.integers(1, 4, (len(boxes), 3))
    grid = np.zeros((len(a) + len(b), 10, 10, 10), bool)
    for k, box in enumerate(np.vstack([a, b]).astype(int)):
        grid[k, box[0] : box[3], box[1] : box[4], box[2] : box[5]] = True
    got = box_iou(a, b)
    for i, j in itertools.product(range(len(a)), range(len(b))):
        inter = np.count_nonzero(grid[i] & grid[len(a) + j])
        union = np.count_nonzero(grid[i] | grid[len(a) + j])
        assert got[i, j] == pytest.approx(inter / union)


def test_matching_is_greedy_by_score_one_to_one() -> None:
    gt = ImageObjects.boxes_from_corners("i", [[0, 0, 10, 10], [20, 20, 30, 30]])
    # two detections hit the first object; the higher score wins, the other is a false positive
    det = ImageObjects.boxes_from_corners(
        "i", [[0, 0, 10, 9], [0, 0, 10, 10], [21, 21, 30, 30]], scores=[0.4, 0.9, 0.5]
    )
    m = match_image(gt, det)[1]
    assert m.det_to_ref.tolist() == [-1, 0, 1]
    c = detection_counts([gt], [det])
    assert (c.tp, c.fp, c.fn) == (2, 1, 0)
    assert c.precision == pytest.approx(2 / 3) and c.recall == 1.0  # 001 D.3, D.2
    assert c.fps_per_image == 1.0
    high = detection_counts([gt], [det], score_threshold=0.6)
    assert (high.tp, high.fp, high.fn) == (1, 0, 1)


def test_classes_are_matched_separately() -> None:
    gt = ImageObjects.boxes_from_corners("i", [[0, 0, 10, 10]], labels=[1])
    det = ImageObjects.boxes_from_corners("i", [[0, 0, 10, 10]], labels=[2], scores=[0.9])
    c = detection_counts([gt], [det])
    assert (c.tp, c.fp, c.fn) == (0, 1, 1)


def test_points_match_by_centre_distance() -> None:
    gt = ImageObjects.points("a", [[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]])
    det = ImageObjects.points("a", [[0.0, 3.0, 4.0], [10.0, 0.0, 6.0]], scores=[0.9, 0.8])
    assert detection_counts([gt], [det], criterion="center", max_distance=5.0).tp == 1
    assert detection_counts([gt], [det], criterion="center", max_distance=6.0).tp == 2
    with pytest.raises(InvalidInputError, match="IoU matching needs boxes"):
        detection_counts([gt], [det])


def _froc_by_enumeration(gts, dets, rates):
    """Every threshold tried directly: re-match with only the detections kept."""
    scores = sorted({float(s) for d in dets for s in d.scores}, reverse=True)
    n_obj = sum(len(g) for g in gts)
    best = {r: 0.0 for r in rates}
    for thr in [np.inf, *scores]:
        kept = [d.subset(d.scores >= thr) for d in dets]
        c = detection_counts(gts, kept, criterion="center", max_distance=2.0)
        for r in rates:
            if c.fp / len(gts) <= r:
                best[r] = max(best[r], c.tp / n_obj)
    return tuple(best[r] for r in rates)


def test_froc_equals_thresholding_one_by_one() -> None:
    rng = np.random.default_rng(10)
    for _ in range(15):
        gts, dets = [], []
        for i in range(int(rng.integers(1, 6))):
            pts = rng.uniform(0, 50, (int(rng.integers(0, 4)), 2))
            gts.append(ImageObjects.points(i, pts))
            hit = pts[rng.random(len(pts)) < 0.7]
            near = hit + rng.normal(0, 1.0, hit.shape)
            far = rng.uniform(0, 50, (int(rng.integers(0, 4)), 2))
            allp = np.vstack([near, far])
            dets.append(ImageObjects.points(i, allp, scores=np.round(rng.random(len(allp)), 1)))
        if not sum(len(g) for g in gts):
            continue
        rates = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
        got = froc(gts, dets, rates=rates, criterion="center", max_distance=2.0)
        assert got.sensitivity_at == pytest.approx(_froc_by_enumeration(gts, dets, rates))


def test_accumulator_reports_every_part() -> None:
    ref, dets = _random_coco(np.random.default_rng(12))
    data = load_coco(ref, dets)
    acc = DetectionAccumulator()
    for r, d in zip(data.refs, data.dets, strict=True):
        acc.update(r, d)
    out = acc.aggregate()
    assert set(out) >= {"counts", "per_class", "froc", "average_precision", "matching"}
    assert out["counts"]["tp"] == sum(v["tp"] for v in out["per_class"].values())
    with pytest.raises(InvalidInputError, match="twice"):
        acc.update(data.refs[0], data.dets[0])


def test_malformed_coco_names_file_and_field() -> None:
    ref = {
        "images": [{"id": 1}],
        "categories": [{"id": 1}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}],
    }
    with pytest.raises(SchemaError, match=r"gt.json: annotations\[0\].*missing field 'bbox'|needs 'bbox'"):
        bad = {**ref, "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}
        load_coco(bad, [], ref_name="gt.json")
    with pytest.raises(SchemaError, match="missing field 'images'"):
        load_coco({"annotations": []}, [])
    with pytest.raises(SchemaError, match="not among the reference images"):
        load_coco(ref, [{"image_id": 9, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(SchemaError, match="not among the reference categories"):
        load_coco(ref, [{"image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "score": 1}])
    with pytest.raises(SchemaError, match="missing field 'score'"):
        load_coco(ref, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], det_name="dt.json")
    with pytest.raises(SchemaError, match="bbox needs 4"):
        load_coco(ref, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}])
