"""Object-level rates over images: precision and recall (001 D.2–D.3), FPs per image, FROC.

Detections are matched to reference objects per image and class by the rule in
:data:`aimd.metrics.detection.MATCHING_RULE`. Object-level recall is 001 D.2 (formula D.1) and
precision D.3 (formula D.2); 001 §9.1.1 a names them for detection/localisation QC.

Example
-------
>>> gt = ImageObjects.boxes_from_corners("img1", [[0, 0, 10, 10]], labels=[1])
>>> det = ImageObjects.boxes_from_corners("img1", [[1, 1, 10, 10], [50, 50, 60, 60]], labels=[1, 1],
...                                       scores=[0.9, 0.8])
>>> c = detection_counts([gt], [det])
>>> c.tp, c.fp, c.fn, c.precision, c.recall
(1, 1, 0, 0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.metrics._validation import safe_ratio
from aimd.metrics.detection import Criterion, ImageObjects, Matching, match_image

__all__ = [
    "FROC_FP_RATES",
    "DetectionCounts",
    "FrocResult",
    "detection_counts",
    "froc",
]

FROC_FP_RATES: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class DetectionCounts:
    """Object-level counts at one score threshold (001 D.2, D.3)."""

    tp: int
    fp: int
    fn: int
    n_images: int

    @property
    def recall(self) -> float:
        """TP_object / (TP_object + FN_object) — 001 D.2; 1 when there is nothing to find."""
        return safe_ratio(self.tp, self.tp + self.fn, when_zero=1.0 if self.fp == 0 else 0.0)

    @property
    def precision(self) -> float:
        """TP_object / (TP_object + FP_object) — 001 D.3; 1 when nothing was detected and nothing missed."""
        return safe_ratio(self.tp, self.tp + self.fp, when_zero=1.0 if self.fn == 0 else 0.0)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        p, r = self.precision, self.recall
        return safe_ratio(2 * p * r, p + r, when_zero=0.0)

    @property
    def fps_per_image(self) -> float:
        """False positives per image."""
        return safe_ratio(self.fp, self.n_images, when_zero=0.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "fps_per_image": self.fps_per_image,
        }


def _pair_images(refs: Sequence[ImageObjects], dets: Sequence[ImageObjects]) -> list[tuple[ImageObjects, ImageObjects]]:
    by_id = {r.image_id: r for r in refs}
    if len(by_id) != len(refs):
        raise InvalidInputError("reference images have duplicate image ids")
    det_by_id: dict[Hashable, ImageObjects] = {}
    for d in dets:
        if d.image_id not in by_id:
            raise InvalidInputError(f"detections for image {d.image_id!r}, which is not in the reference set")
        if d.image_id in det_by_id:
            raise InvalidInputError(f"detections for image {d.image_id!r} given twice")
        det_by_id[d.image_id] = d
    pairs = []
    for r in refs:
        d = det_by_id.get(r.image_id)
        if d is None:
            width = r.coords.shape[1]
            d = ImageObjects(r.image_id, np.empty((0, width)), np.empty(0, np.int64), r.kind, np.empty(0))
        pairs.append((r, d))
    return pairs


def _all_matches(
    refs: Sequence[ImageObjects],
    dets: Sequence[ImageObjects],
    criterion: Criterion,
    threshold: float,
    max_distance: float | None,
    label: int | None,
) -> list[Matching]:
    out = []
    for r, d in _pair_images(refs, dets):
        for lab, m in match_image(r, d, criterion=criterion, threshold=threshold, max_distance=max_distance).items():
            if label is None or lab == label:
                out.append(m)
    return out


def detection_counts(
    refs: Sequence[ImageObjects],
    dets: Sequence[ImageObjects],
    *,
    score_threshold: float = 0.0,
    criterion: Criterion = "iou",
    threshold: float = 0.5,
    max_distance: float | None = None,
    label: int | None = None,
) -> DetectionCounts:
    """Object-level TP/FP/FN over images for detections scoring ``>= score_threshold``.

    Parameters
    ----------
    refs, dets:
        Reference objects and detections per image (matched by ``image_id``; an image missing
        from ``dets`` has no detections).
    criterion, threshold, max_distance:
        IoU ≥ ``threshold``, or centre distance ≤ ``max_distance``.
    label:
        Restrict to one class; default all classes (matched within their class).

    Examples
    --------
    >>> gt = ImageObjects.points("a", [[0, 0], [9, 9]])
    >>> det = ImageObjects.points("a", [[0, 1]], scores=[0.7])
    >>> detection_counts([gt], [det], criterion="center", max_distance=2).recall
    0.5
    """
    tp = fp = fn = 0
    for m in _all_matches(refs, dets, criterion, threshold, max_distance, label):
        keep = m.scores >= score_threshold
        hits = int(np.count_nonzero(m.det_is_tp & keep))
        tp += hits
        fp += int(np.count_nonzero(~m.det_is_tp & keep))
        fn += m.n_ref - hits
    return DetectionCounts(tp, fp, fn, len(refs))


@dataclass(frozen=True)
class FrocResult:
    """FROC curve and the sensitivity at each FP-per-image rate."""

    fps_per_image: NDArray[np.float64]
    sensitivity: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    rates: tuple[float, ...]
    sensitivity_at: tuple[float, ...]
    n_images: int
    n_objects: int

    @property
    def score(self) -> float:
        """Mean sensitivity over the rates (the competition performance metric)."""
        return float(np.mean(self.sensitivity_at))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "rates": list(self.rates),
            "sensitivity_at": dict(zip([str(r) for r in self.rates], self.sensitivity_at, strict=True)),
            "score": self.score,
            "n_images": self.n_images,
            "n_objects": self.n_objects,
            "rule": "sensitivity at rate r = highest sensitivity over score thresholds with FPs/image <= r",
        }


def froc(
    refs: Sequence[ImageObjects],
    dets: Sequence[ImageObjects],
    *,
    rates: Sequence[float] = FROC_FP_RATES,
    criterion: Criterion = "iou",
    threshold: float = 0.5,
    max_distance: float | None = None,
    label: int | None = None,
) -> FrocResult:
    """Free-response ROC: sensitivity against false positives per image.

    Each score threshold keeps detections scoring ``>=`` it; since matching is greedy by score,
    a detection's TP/FP status does not depend on the threshold. Sensitivity at a rate ``r`` is
    the highest sensitivity reached by any threshold whose FPs per image do not exceed ``r``.

    Examples
    --------
    >>> gt = [ImageObjects.points(i, [[0, 0]]) for i in range(2)]
    >>> det = [ImageObjects.points(0, [[0, 0], [5, 5]], scores=[0.9, 0.8]),
    ...        ImageObjects.points(1, [[9, 9], [0, 0]], scores=[0.7, 0.6])]
    >>> r = froc(gt, det, criterion="center", max_distance=1, rates=(0.5, 1.0))
    >>> r.sensitivity_at
    (0.5, 1.0)
    """
    matches = _all_matches(refs, dets, criterion, threshold, max_distance, label)
    n_obj = sum(m.n_ref for m in matches)
    n_img = len(refs)
    if n_img == 0:
        raise InvalidInputError("FROC needs at least one image")
    scores = np.concatenate([m.scores for m in matches]) if matches else np.empty(0)
    is_tp = np.concatenate([m.det_is_tp for m in matches]) if matches else np.empty(0, bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, is_tp = scores[order], is_tp[order]
    cum_tp = np.cumsum(is_tp)
    cum_fp = np.cumsum(~is_tp)
    # a threshold can only sit between distinct scores: keep the last index of each score run
    last = np.r_[scores[1:] != scores[:-1], True] if scores.size else np.empty(0, bool)
    sens = np.r_[0.0, cum_tp[last] / n_obj if n_obj else np.zeros(int(last.sum()))]
    fppi = np.r_[0.0, cum_fp[last] / n_img]
    thr = np.r_[np.inf, scores[last]]
    at = tuple(float(sens[fppi <= r].max()) for r in rates)
    return FrocResult(fppi, sens, thr, tuple(float(r) for r in rates), at, n_img, n_obj)
