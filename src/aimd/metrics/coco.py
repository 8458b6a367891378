"""COCO-style detection files and average precision (AP per class, mAP@0.5, mAP@[.5:.95]).

AP follows the COCO evaluation exactly (pinned to pycocotools in the tests), generalised to 3-D
boxes: per image and class, detections sorted by score (stable) and capped at ``max_dets``;
greedy matching at each IoU threshold (see :data:`aimd.metrics.detection.MATCHING_RULE`), crowd
references ignored; per class the precision envelope is sampled at 101 recall points
``0, 0.01, …, 1`` and averaged. mAP (000 App. A.10.2 d, formula A.8) is the mean over classes that
have at least one non-crowd reference object.

Reference files are COCO dictionaries (``images``, ``annotations`` with ``bbox`` ``[x, y, w, h]``
or ``[x, y, z, w, h, d]`` — or ``point`` ``[x, y(, z)]`` — and ``categories``); detection files
are COCO result lists (``image_id``, ``category_id``, ``bbox``/``point``, ``score``) or a
dictionary holding such a list under ``annotations``.

Example
-------
>>> ref = {"images": [{"id": 1}], "categories": [{"id": 1, "name": "nodule"}],
...        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10]}]}
>>> det = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 9], "score": 0.9}]
>>> data = load_coco(ref, det)
>>> r = average_precision(data.refs, data.dets)
>>> round(r.map50, 3), round(r.map50_95, 3)
(1.0, 0.9)
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import SchemaError
from aimd.metrics.detection import ImageObjects, box_iou, greedy_match, score_order

__all__ = [
    "COCO_IOU_THRESHOLDS",
    "CocoData",
    "ApResult",
    "average_precision",
    "load_coco",
]

COCO_IOU_THRESHOLDS: NDArray[np.float64] = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
RECALL_POINTS: NDArray[np.float64] = np.linspace(0.0, 1.0, int(np.round(1.0 / 0.01)) + 1)


@dataclass(frozen=True)
class CocoData:
    """Reference and detection objects per image (images sorted by id) and the category names."""

    refs: list[ImageObjects]
    dets: list[ImageObjects]
    categories: dict[int, str]
    kind: str


def _field(obj: Mapping[str, Any], key: str, where: str, source: str) -> Any:
    if not isinstance(obj, Mapping):
        raise SchemaError(f"expected an object, got {type(obj).__name__}", where=f"{source}: {where}")
    if key not in obj:
        raise SchemaError(
            f"missing field '{key}'",
            where=f"{source}: {where}",
            hint="see the COCO format: images, annotations, categories",
        )
    return obj[key]


def _geometry(ann: Mapping[str, Any], where: str, source: str) -> tuple[str, list[float]]:
    if "bbox" in ann:
        kind, name, value = "box", "bbox", ann["bbox"]
        sizes = (4, 6)
    elif "point" in ann:
        kind, name, value = "point", "point", ann["point"]
        sizes = (2, 3)
    else:
        raise SchemaError("needs 'bbox' or 'point'", where=f"{source}: {where}")
    try:
        nums = [float(v) for v in value]
    except (TypeError, ValueError) as err:
        raise SchemaError(f"{name} must be a list of numbers, got {value!r}", where=f"{source}: {where}") from err
    if len(nums) not in sizes or not all(np.isfinite(nums)):
        raise SchemaError(
            f"{name} needs {sizes[0]} (2-D) or {sizes[1]} (3-D) finite numbers, got {value!r}",
            where=f"{source}: {where}",
        )
    if kind == "box" and any(v < 0 for v in nums[len(nums) // 2 :]):
        raise SchemaError(f"bbox sizes must be >= 0, got {value!r}", where=f"{source}: {where}")
    return kind, nums


def _objects(
    image_id: Hashable,
    rows: list[tuple[str, list[float], int, float | None, bool, Any]],
    kind: str,
    width: int,
    with_scores: bool,
) -> ImageObjects:
    coords = np.array([r[1] for r in rows], dtype=np.float64).reshape(-1, width)
    if kind == "box":
        half = width // 2
        coords = np.concatenate([coords[:, :half], coords[:, :half] + coords[:, half:]], axis=1)
    labels = np.array([r[2] for r in rows], dtype=np.int64)
    scores = np.array([r[3] for r in rows], dtype=np.float64) if with_scores else None
    crowd = np.array([r[4] for r in rows], dtype=bool)
    return ImageObjects(image_id, coords, labels, kind, scores, crowd, tuple(r[5] for r in rows))  # type: ignore[arg-type]


def load_coco(ref: Any, det: Any, *, ref_name: str = "REF", det_name: str = "PRED") -> CocoData:
    """Parse a COCO reference dictionary and a COCO result list into per-image objects.

    Raises :class:`~aimd.core.errors.SchemaError` naming the file and field for malformed input,
    detections on images or categories the reference does not have, or mixed boxes/points/dimensions.

    Examples
    --------
    >>> d = load_coco({"images": [{"id": 3}], "annotations": [], "categories": [{"id": 1}]}, [])
    >>> [r.image_id for r in d.refs], d.categories
    ([3], {1: '1'})
    """
    if not isinstance(ref, Mapping):
        raise SchemaError(
            f"expected a COCO object with images/annotations/categories, got {type(ref).__name__}",
            where=ref_name,
        )
    images = _field(ref, "images", "images", ref_name)
    anns = _field(ref, "annotations", "annotations", ref_name)
    cats = _field(ref, "categories", "categories", ref_name)
    for name, value in (("images", images), ("annotations", anns), ("categories", cats)):
        if not isinstance(value, list):
            raise SchemaError(f"'{name}' must be a list, got {type(value).__name__}", where=ref_name)
    categories: dict[int, str] = {}
    for i, c in enumerate(cats):
        cid = _field(c, "id", f"categories[{i}]", ref_name)
        categories[int(cid)] = str(c.get("name", cid))
    image_ids = [_field(im, "id", f"images[{i}]", ref_name) for i, im in enumerate(images)]
    if len(set(image_ids)) != len(image_ids):
        raise SchemaError("duplicate image ids", where=f"{ref_name}: images")
    with contextlib.suppress(TypeError):  # ids of mixed types keep file order
        image_ids = sorted(image_ids)
    det_rows = det.get("annotations") if isinstance(det, Mapping) else det
    if not isinstance(det_rows, list):
        raise SchemaError(
            "expected a list of detections (COCO results) or an object with 'annotations'", where=det_name
        )
    kinds: set[tuple[str, int]] = set()
    per_image: dict[str, dict[Hashable, list[Any]]] = {
        "ref": {i: [] for i in image_ids},
        "det": {i: [] for i in image_ids},
    }
    for source, rows, name in (("ref", anns, ref_name), ("det", det_rows, det_name)):
        for i, ann in enumerate(rows):
            where = f"annotations[{i}]" if source == "ref" or isinstance(det, Mapping) else f"[{i}]"
            image_id = _field(ann, "image_id", where, name)
            cat = int(_field(ann, "category_id", where, name))
            kind, nums = _geometry(ann, where, name)
            kinds.add((kind, len(nums)))
            if image_id not in per_image[source]:
                raise SchemaError(f"image_id {image_id!r} is not among the reference images", where=f"{name}: {where}")
            if cat not in categories:
                raise SchemaError(
                    f"category_id {cat} is not among the reference categories {sorted(categories)}",
                    where=f"{name}: {where}",
                )
            score: float | None = None
            if source == "det":
                try:
                    score = float(_field(ann, "score", where, name))
                except (TypeError, ValueError) as err:
                    raise SchemaError(
                        f"score must be a number, got {ann['score']!r}", where=f"{name}: {where}"
                    ) from err
                if not np.isfinite(score):
                    raise SchemaError("score must be finite", where=f"{name}: {where}")
            crowd = bool(ann.get("iscrowd", 0)) if source == "ref" else False
            per_image[source][image_id].append((kind, nums, cat, score, crowd, ann.get("id", i + 1)))
    if len(kinds) > 1:
        raise SchemaError(
            f"objects mix kinds or dimensions: {sorted(kinds)}",
            where=f"{ref_name}/{det_name}",
            hint="use one of 2-D boxes, 3-D boxes, 2-D points or 3-D points throughout",
        )
    kind, width = next(iter(kinds)) if kinds else ("box", 4)
    refs = [_objects(i, per_image["ref"][i], kind, width, False) for i in image_ids]
    dets = [_objects(i, per_image["det"][i], kind, width, True) for i in image_ids]
    return CocoData(refs, dets, categories, kind)


@dataclass(frozen=True)
class ApResult:
    """AP per class and IoU threshold, and the mAPs."""

    iou_thresholds: NDArray[np.float64]
    ap: dict[int, NDArray[np.float64]]
    recall: dict[int, NDArray[np.float64]]
    max_dets: int

    def _mean_at(self, index: int | None) -> float | None:
        vals = [v[index] if index is not None else v.mean() for v in self.ap.values()]
        return float(np.mean(vals)) if vals else None

    @property
    def map50(self) -> float | None:
        """Mean AP over classes at IoU 0.5 (``None`` if no class has reference objects)."""
        hits = np.flatnonzero(np.isclose(self.iou_thresholds, 0.5))
        return self._mean_at(int(hits[0])) if hits.size else None

    @property
    def map50_95(self) -> float | None:
        """Mean AP over classes and the IoU thresholds (COCO mAP@[.5:.95])."""
        return self._mean_at(None)

    def to_dict(self, categories: Mapping[int, str] | None = None) -> dict[str, Any]:
        """Plain JSON values."""
        per_class = {}
        for k, v in self.ap.items():
            row: dict[str, Any] = {"ap50_95": float(v.mean()), "recall": float(self.recall[k].mean())}
            for t, a in zip(self.iou_thresholds, v, strict=True):
                row[f"ap{round(t * 100):d}"] = float(a)
            if categories:
                row["name"] = categories.get(k, str(k))
            per_class[str(k)] = row
        return {
            "map50": self.map50,
            "map50_95": self.map50_95,
            "per_class": per_class,
            "iou_thresholds": [float(t) for t in self.iou_thresholds],
            "max_dets": self.max_dets,
            "rule": "COCO: 101-point interpolated precision, greedy matching per IoU threshold, "
            "classes without reference objects excluded",
        }


@dataclass
class _ImageEval:
    scores: NDArray[np.float64]
    matched: NDArray[np.bool_]
    ignored: NDArray[np.bool_]
    gt_ignore: NDArray[np.bool_]


def _evaluate(ref: ImageObjects, det: ImageObjects, thresholds: NDArray[np.float64], max_dets: int) -> _ImageEval:
    assert ref.crowd is not None and det.scores is not None
    gt_order = np.argsort(ref.crowd.astype(np.int8), kind="mergesort")
    gt_boxes, gt_ign = ref.coords[gt_order], ref.crowd[gt_order]
    dt_order = score_order(det.scores)[:max_dets]
    dt_boxes, dt_scores = det.coords[dt_order], det.scores[dt_order]
    nd, nt = len(dt_order), len(thresholds)
    matched = np.zeros((nt, nd), bool)
    ignored = np.zeros((nt, nd), bool)
    if nd and len(gt_boxes):
        ious = box_iou(dt_boxes, gt_boxes, crowd=gt_ign)
        for t, thr in enumerate(thresholds):
            match, ign = greedy_match(ious, float(thr), np.arange(nd), ignore=gt_ign, reusable=gt_ign)
            matched[t] = match >= 0
            ignored[t] = ign
    return _ImageEval(dt_scores, matched, ignored, gt_ign)


def average_precision(
    refs: Sequence[ImageObjects],
    dets: Sequence[ImageObjects],
    iou_thresholds: Sequence[float] | NDArray[np.float64] = COCO_IOU_THRESHOLDS,
    max_dets: int = 100,
) -> ApResult:
    """COCO average precision per class at each IoU threshold, and mAP@0.5 / mAP@[.5:.95].

    Parameters
    ----------
    refs, dets:
        Boxes per image, in the same image order (images without detections may hold none).
    iou_thresholds:
        Default ``0.50, 0.55, …, 0.95``.
    max_dets:
        Highest-scoring detections kept per image and class.

    Examples
    --------
    >>> gt = [ImageObjects.boxes_from_corners(1, [[0, 0, 4, 4]])]
    >>> dt = [ImageObjects.boxes_from_corners(1, [[0, 0, 4, 4], [9, 9, 10, 10]], scores=[0.2, 0.9])]
    >>> round(average_precision(gt, dt).map50, 4)
    0.5
    """
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    if len(refs) != len(dets) or any(r.image_id != d.image_id for r, d in zip(refs, dets, strict=False)):
        raise SchemaError("reference and detection lists must hold the same images in the same order")
    if any(r.kind != "box" for r in refs) or any(d.kind != "box" for d in dets):
        raise SchemaError("average precision needs boxes", hint="for points use FROC or detection_counts")
    labels = sorted({int(v) for r in refs for v in r.labels} | {int(v) for d in dets for v in d.labels})
    ap: dict[int, NDArray[np.float64]] = {}
    rec: dict[int, NDArray[np.float64]] = {}
    for k in labels:
        evals = []
        for r, d in zip(refs, dets, strict=True):
            rk, dk = r.subset(r.labels == k), d.subset(d.labels == k)
            if len(rk) or len(dk):
                evals.append(_evaluate(rk, dk, thresholds, max_dets))
        n_pos = sum(int(np.count_nonzero(~e.gt_ignore)) for e in evals)
        if n_pos == 0:
            continue
        scores = np.concatenate([e.scores for e in evals])
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([e.matched for e in evals], axis=1)[:, order]
        ignored = np.concatenate([e.ignored for e in evals], axis=1)[:, order]
        tps = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
        fps = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
        ap_k = np.zeros(len(thresholds))
        rec_k = np.zeros(len(thresholds))
        for t in range(len(thresholds)):
            tp, fp = tps[t], fps[t]
            recall = tp / n_pos
            prec = tp / (fp + tp + np.spacing(1))
            rec_k[t] = recall[-1] if recall.size else 0.0
            envelope = np.maximum.accumulate(prec[::-1])[::-1]
            idx = np.searchsorted(recall, RECALL_POINTS, side="left")
            q = np.zeros(len(RECALL_POINTS))
            ok = idx < len(envelope)
            q[ok] = envelope[idx[ok]]
            ap_k[t] = q.mean()
        ap[k] = ap_k
        rec[k] = rec_k
    return ApResult(thresholds, ap, rec, max_dets)
