"""Benchmark performance of a model on one split (000 §4.3.4, A.10): Dice for segmentation, AUC for
classification — the numbers training records and export compares across runtimes.

Segmentation is scored per case on the whole 3-D volume (slices stacked back), per foreground
class, with :func:`aimd.metrics.segmentation.dice`; a case where prediction and truth are both empty
for a class scores 1. Classification uses :func:`aimd.metrics.classification.roc_curve` for the AUC
plus sensitivity and specificity at the 0.5 operating point.

Example
-------
>>> import numpy as np
>>> from aimd.models.specs import OutputSpec
>>> spec = OutputSpec(task="classification", labels={0: "no", 1: "yes"}, activation="softmax")
>>> probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], np.float32)
>>> score_classification(probs, np.array([0, 1, 0, 1]), spec)["auc"]
1.0
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.metrics.classification import roc_curve
from aimd.metrics.segmentation import dice
from aimd.models.data import ArraySet
from aimd.models.predictor import activate
from aimd.models.specs import OutputSpec

LogitsFn = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def _labels_from_probs(probs: NDArray[np.float32], spec: OutputSpec) -> NDArray[np.int64]:
    if spec.activation == "softmax":
        return np.argmax(probs, axis=1).astype(np.int64)
    return (probs[:, 0] >= spec.threshold).astype(np.int64)


def score_segmentation(
    pred: dict[str, NDArray[np.int64]], truth: dict[str, NDArray[np.int64]], spec: OutputSpec
) -> dict[str, Any]:
    """Per-case, per-class Dice of label volumes; ``dice_mean`` averages cases and foreground classes."""
    classes = [c for c in sorted(spec.labels) if c != 0 or spec.activation == "sigmoid"]
    per_case: dict[str, dict[str, float]] = {}
    for cid, p in pred.items():
        t = truth[cid]
        per_case[cid] = {spec.labels[c]: float(dice(t == c, p == c)) for c in classes}
    per_class = {spec.labels[c]: float(np.mean([v[spec.labels[c]] for v in per_case.values()])) for c in classes}
    values = [v for case in per_case.values() for v in case.values()]
    return {
        "metric": "dice",
        "dice_mean": float(np.mean(values)) if values else None,
        "dice_per_class": per_class,
        "cases": len(per_case),
        "per_case": per_case,
    }


def score_classification(probs: NDArray[np.float32], truth: NDArray[np.int64], spec: OutputSpec) -> dict[str, Any]:
    """AUC (None when one class is absent), accuracy, sensitivity and specificity at 0.5."""
    pos = spec.positive_class if spec.activation == "softmax" else 0
    scores = probs[:, pos]
    truth = np.asarray(truth).astype(np.int64)
    decided = (scores >= 0.5).astype(np.int64)
    n_pos = int(truth.sum())
    auc = roc_curve(truth, scores).auc if 0 < n_pos < len(truth) else None
    tp = int(((decided == 1) & (truth == 1)).sum())
    tn = int(((decided == 0) & (truth == 0)).sum())
    return {
        "metric": "auc",
        "auc": auc,
        "accuracy": float((decided == truth).mean()),
        "sensitivity": tp / n_pos if n_pos else None,
        "specificity": tn / (len(truth) - n_pos) if len(truth) - n_pos else None,
        "n": len(truth),
        "n_positive": n_pos,
    }


def evaluate_logits(logits_fn: LogitsFn, data: ArraySet, spec: OutputSpec, *, batch: int = 32) -> dict[str, Any]:
    """Score ``logits_fn`` on ``data``: per-case 3-D Dice (needs ``data.volumes``) or image AUC."""
    if spec.task == "segmentation":
        pred: dict[str, NDArray[np.int64]] = {}
        truth: dict[str, NDArray[np.int64]] = {}
        for cid, (inputs, target, _spacing) in data.volumes.items():
            parts = [logits_fn(inputs[i : i + batch]) for i in range(0, inputs.shape[0], batch)]
            probs = activate(np.concatenate(parts), spec.activation)
            pred[cid] = _labels_from_probs(probs, spec)
            truth[cid] = target
        return score_segmentation(pred, truth, spec)
    parts = [logits_fn(data.images[i : i + batch]) for i in range(0, len(data), batch)]
    return score_classification(activate(np.concatenate(parts), spec.activation), data.targets, spec)


def headline(scores: dict[str, Any]) -> float | None:
    """The one number a run is judged by: mean Dice or AUC."""
    return scores.get("dice_mean") if scores.get("metric") == "dice" else scores.get("auc")


__all__ = ["LogitsFn", "evaluate_logits", "headline", "score_classification", "score_segmentation"]
