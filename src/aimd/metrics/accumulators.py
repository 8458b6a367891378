"""Accumulators: collect per-case results over a dataset, then aggregate (update / aggregate / reset).

Each accumulator keeps what its metrics need — per-case segmentation rows, pooled truth and
scores, per-image detections, pooled span counts — so a dataset can be streamed case by case
(or computed in parallel and added) and summarised once, with bootstrap CIs over cases.

Example
-------
>>> import numpy as np
>>> acc = SegmentationAccumulator()
>>> ref = np.zeros((1, 6, 6), np.uint8); ref[0, 1:4, 1:4] = 1
>>> _ = acc.update("case1", ref, ref, spacing=(1.0, 1.0, 1.0))
>>> _ = acc.update("case2", ref, np.roll(ref, 1, axis=2), spacing=(1.0, 1.0, 1.0))
>>> out = acc.aggregate()
>>> out["summary"]["1"]["dice"]["mean"]
0.8333333333333333
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike

from aimd.core.errors import InvalidInputError
from aimd.metrics.classification import binary_metrics, binary_truth, choose_threshold, roc_curve
from aimd.metrics.coco import average_precision
from aimd.metrics.detection import MATCHING_RULE, Criterion, ImageObjects
from aimd.metrics.detection_rates import FROC_FP_RATES, detection_counts, froc
from aimd.metrics.segmentation import SEGMENTATION_DEFINITIONS, LabelMetrics, segmentation_metrics
from aimd.metrics.statistics import bootstrap_ci, delong_auc
from aimd.metrics.text import MatchMode, SpanScores, span_scores

__all__ = [
    "SEGMENTATION_SUMMARY_METRICS",
    "Accumulator",
    "ClassificationAccumulator",
    "DetectionAccumulator",
    "SegmentationAccumulator",
    "TextAccumulator",
    "summarize",
]

SEGMENTATION_SUMMARY_METRICS: tuple[str, ...] = (
    "dice",
    "iou",
    "hd",
    "hd95",
    "assd",
    "precision",
    "recall",
    "pixel_accuracy",
    "conformity",
    "conformity_classic",
    "volume_ref_ml",
    "volume_pred_ml",
    "volume_diff_ml",
)


class Accumulator(Protocol):
    """The shape every accumulator has."""

    def reset(self) -> None:
        """Forget everything added."""

    def aggregate(self) -> dict[str, Any]:
        """Summarise everything added so far."""


def summarize(
    values: Iterable[float | None], *, confidence: float = 0.95, seed: int = 0, n_resamples: int = 2000
) -> dict[str, Any]:
    """Count, mean, SD, median, range and a BCa bootstrap CI of the mean of the non-null values.

    Examples
    --------
    >>> s = summarize([1.0, 2.0, None, 3.0])
    >>> s["n"], s["n_null"], s["mean"]
    (3, 1, 2.0)
    """
    given = list(values)
    vals = np.array([v for v in given if v is not None], dtype=np.float64)
    out: dict[str, Any] = {"n": int(vals.size), "n_null": len(given) - int(vals.size)}
    if vals.size == 0:
        return out | {
            "mean": None,
            "sd": None,
            "median": None,
            "min": None,
            "max": None,
            "ci_low": None,
            "ci_high": None,
        }
    out |= {
        "mean": float(vals.mean()),
        "sd": float(vals.std(ddof=1)) if vals.size > 1 else None,
        "median": float(np.median(vals)),
        "min": float(vals.min()),
        "max": float(vals.max()),
    }
    if vals.size > 1:
        ci = bootstrap_ci(
            vals,
            np.mean,
            confidence=confidence,
            method="bca",
            n_resamples=n_resamples,
            seed=seed,
            vectorized=True,
        )
        out |= {
            "ci_low": ci.low,
            "ci_high": ci.high,
            "ci": f"{confidence:.0%} BCa bootstrap of the mean, "
            f"{n_resamples} resamples, seed {seed}" + (f"; {ci.note}" if ci.note else ""),
        }
    else:
        out |= {"ci_low": None, "ci_high": None}
    return out


class SegmentationAccumulator:
    """Per-case, per-label segmentation metrics and their summary over cases.

    Parameters
    ----------
    labels:
        Labels to evaluate in every case (default: those found in each case).
    """

    def __init__(self, labels: Iterable[int] | None = None, *, seed: int = 0) -> None:
        self.labels = None if labels is None else sorted({int(v) for v in labels})
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget all cases."""
        self._cases: list[tuple[Hashable, dict[int, LabelMetrics]]] = []

    def update(
        self,
        case_id: Hashable,
        ref: ArrayLike,
        pred: ArrayLike,
        spacing: float | Sequence[float] | None = None,
    ) -> dict[int, LabelMetrics]:
        """Compute and store one case's metrics (spacing in array-axis order)."""
        result = segmentation_metrics(ref, pred, spacing, self.labels)
        self.add(case_id, result)
        return result

    def add(self, case_id: Hashable, result: dict[int, LabelMetrics]) -> None:
        """Store metrics computed elsewhere (e.g. in a worker process)."""
        if any(c == case_id for c, _ in self._cases):
            raise InvalidInputError(f"case {case_id!r} added twice")
        self._cases.append((case_id, result))

    def aggregate(self) -> dict[str, Any]:
        """``{"cases": [...], "summary": {label: {metric: stats}}, "definitions": {...}}``."""
        cases = [
            {"case": str(c), "labels": {str(k): v.to_dict() for k, v in sorted(r.items())}} for c, r in self._cases
        ]
        labels = sorted({k for _, r in self._cases for k in r})
        summary: dict[str, Any] = {}
        for label in labels:
            rows = [r[label] for _, r in self._cases if label in r]
            dicts = [m.to_dict() for m in rows]
            entry = {
                name: summarize([d.get(name) for d in dicts], seed=self.seed)
                for name in SEGMENTATION_SUMMARY_METRICS
                if any(name in d for d in dicts)
            }
            tp = sum(m.counts.tp for m in rows)
            fp = sum(m.counts.fp for m in rows)
            fn = sum(m.counts.fn for m in rows)
            entry["dice_pooled"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
            entry["n_cases"] = len(rows)
            entry["n_distance_worst_case"] = sum(m.distance_worst_case for m in rows)
            entry["n_both_empty"] = sum(m.empty == "both" for m in rows)
            summary[str(label)] = entry
        return {"cases": cases, "summary": summary, "definitions": dict(SEGMENTATION_DEFINITIONS)}


class ClassificationAccumulator:
    """Pooled truth, scores and/or predicted labels of a binary classification task."""

    def __init__(self, positive: Any = 1) -> None:
        self.positive = positive
        self.reset()

    def reset(self) -> None:
        """Forget all cases."""
        self._truth: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self._pred: list[np.ndarray] = []

    def update(self, y_true: ArrayLike, scores: ArrayLike | None = None, y_pred: ArrayLike | None = None) -> None:
        """Add cases: truth plus scores (for ROC) and/or predicted labels."""
        if scores is None and y_pred is None:
            raise InvalidInputError("give scores, predicted labels or both")
        t = binary_truth(y_true, self.positive)
        if self._truth and ((scores is None) != (not self._scores) or (y_pred is None) != (not self._pred)):
            raise InvalidInputError("every update must carry the same kinds of values (scores / labels)")
        self._truth.append(t)
        if scores is not None:
            s = np.asarray(scores, dtype=np.float64).reshape(-1)
            if s.size != t.size:
                raise InvalidInputError(f"{t.size} truth values but {s.size} scores")
            self._scores.append(s)
        if y_pred is not None:
            p = binary_truth(y_pred, self.positive, name="prediction")
            if p.size != t.size:
                raise InvalidInputError(f"{t.size} truth values but {p.size} predictions")
            self._pred.append(p)

    def aggregate(
        self,
        *,
        threshold: float | None = None,
        rule: Literal["youden", "sensitivity", "specificity"] = "youden",
        target: float | None = None,
        confidence: float = 0.95,
    ) -> dict[str, Any]:
        """Confusion counts and rates; with scores also ROC, AUC (DeLong CI) and the operating point."""
        if not self._truth:
            raise InvalidInputError("no cases added")
        truth = np.concatenate(self._truth)
        if (self._scores and truth.all()) or not truth.any():
            raise InvalidInputError(
                f"{int(truth.sum())} of {truth.size} cases equal the positive class {self.positive!r}; "
                "sensitivity, specificity and ROC need both classes",
                hint="set the positive class to a value of the truth column",
            )
        out: dict[str, Any] = {"n": int(truth.size), "n_positive": int(truth.sum())}
        if self._pred:
            out["from_labels"] = binary_metrics(truth, np.concatenate(self._pred), positive=True).to_dict()
        if self._scores:
            scores = np.concatenate(self._scores)
            roc = roc_curve(truth, scores, positive=True)
            dl = delong_auc(truth, scores)
            low, high = dl.ci(confidence)
            out["auc"] = {
                "auc": roc.auc,
                "ci_low": low,
                "ci_high": high,
                "confidence": confidence,
                "ci_method": "DeLong, normal approximation clipped to [0, 1]",
            }
            if threshold is not None:
                counts = binary_metrics(truth, scores >= threshold, positive=True)
                out["operating_point"] = {
                    "threshold": threshold,
                    "rule": "given threshold (score >= t)",
                    **counts.to_dict(),
                }
            else:
                out["operating_point"] = choose_threshold(truth, scores, rule, target, positive=True).to_dict()
            out["roc"] = roc.to_dict()
        return out


class DetectionAccumulator:
    """Reference objects and detections per image; aggregates P/R, FPs per image, FROC and AP."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget all images."""
        self._refs: list[ImageObjects] = []
        self._dets: list[ImageObjects] = []

    def update(self, ref: ImageObjects, det: ImageObjects) -> None:
        """Add one image's reference objects and detections (same ``image_id``)."""
        if ref.image_id != det.image_id:
            raise InvalidInputError(f"image ids differ: {ref.image_id!r} vs {det.image_id!r}")
        if any(r.image_id == ref.image_id for r in self._refs):
            raise InvalidInputError(f"image {ref.image_id!r} added twice")
        self._refs.append(ref)
        self._dets.append(det)

    def aggregate(
        self,
        *,
        criterion: Criterion = "iou",
        threshold: float = 0.5,
        max_distance: float | None = None,
        score_threshold: float = 0.0,
        rates: Sequence[float] = FROC_FP_RATES,
    ) -> dict[str, Any]:
        """Object-level counts (001 D.2–D.3), FPs per image, FROC, and for boxes AP/mAP."""
        if not self._refs:
            raise InvalidInputError("no images added")
        kw: dict[str, Any] = {"criterion": criterion, "threshold": threshold, "max_distance": max_distance}
        labels = sorted({int(v) for r in self._refs for v in r.labels} | {int(v) for d in self._dets for v in d.labels})
        out: dict[str, Any] = {
            "n_images": len(self._refs),
            "matching": {
                "rule": MATCHING_RULE,
                "criterion": criterion,
                "iou_threshold" if criterion == "iou" else "max_distance": threshold
                if criterion == "iou"
                else max_distance,
                "score_threshold": score_threshold,
            },
            "counts": detection_counts(self._refs, self._dets, score_threshold=score_threshold, **kw).to_dict(),
            "per_class": {
                str(k): detection_counts(
                    self._refs, self._dets, score_threshold=score_threshold, label=k, **kw
                ).to_dict()
                for k in labels
            },
            "froc": froc(self._refs, self._dets, rates=rates, **kw).to_dict(),
        }
        if all(r.kind == "box" for r in self._refs):
            out["average_precision"] = average_precision(self._refs, self._dets).to_dict()
        return out


class TextAccumulator:
    """Span counts pooled over documents."""

    def __init__(self, mode: MatchMode = "exact") -> None:
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        """Forget all documents."""
        self._scores = SpanScores(self.mode)
        self._n_docs = 0

    def update(self, ref: Iterable[Any], pred: Iterable[Any]) -> SpanScores:
        """Add one document's reference and predicted spans; returns that document's scores."""
        doc = span_scores(ref, pred, self.mode)
        self._scores = self._scores.merged(doc)
        self._n_docs += 1
        return doc

    def aggregate(self) -> dict[str, Any]:
        """Micro/macro P/R/F1 over all documents added."""
        return {"n_documents": self._n_docs, **self._scores.to_dict()}
