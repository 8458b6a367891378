"""Per-case performance of a predictor on :class:`EvalData` (000 A.10), with bootstrap CIs.

Segmentation: Dice (A.10.2 b) per case over all of its slices, averaged over the foreground
classes present in the reference or the prediction (1 when both are empty). Classification:
correct/incorrect per image, so the mean is accuracy (A.10.1 d).

Example
-------
>>> import numpy as np
>>> from aimd.evaluation.context import EvalData
>>> t = np.zeros((2, 4, 4), np.int64); t[:, :2] = 1
>>> d = EvalData(np.zeros((2, 1, 4, 4), np.float32), t, ["a", "b"], {}, task="segmentation")
>>> case_scores(t, d)
{'a': 1.0, 'b': 1.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.evaluation.context import EvalData
from aimd.metrics import bootstrap_ci, dice
from aimd.models.predictor import BasePredictor
from aimd.models.specs import OutputSpec


def metric_name(task: str) -> str:
    """Name of the headline metric for ``task``."""
    return "Dice" if task == "segmentation" else "accuracy"


def labels_from_probs(probs: NDArray[np.float32], spec: OutputSpec) -> NDArray[np.int64]:
    """Class index per pixel (segmentation) or image (classification) after the declared post-processing.

    Example
    -------
    >>> from aimd.models.specs import OutputSpec
    >>> s = OutputSpec(task="classification", labels={0: "no", 1: "yes"}, activation="softmax")
    >>> labels_from_probs(np.array([[0.2, 0.8]], np.float32), s).tolist()
    [1]
    """
    if spec.activation == "softmax":
        return np.argmax(probs, axis=1).astype(np.int64)
    return (probs[:, 0] >= spec.threshold).astype(np.int64)


def predict_labels(predictor: BasePredictor, images: NDArray[np.float32]) -> NDArray[np.int64]:
    """Labels the predictor gives ``images``."""
    return labels_from_probs(predictor.predict(images), predictor.output_spec)


def case_scores(labels: NDArray[np.int64], data: EvalData) -> dict[str, float]:
    """Per-case metric of predicted ``labels`` against ``data.targets``."""
    owners = np.asarray(data.case_ids)
    out: dict[str, float] = {}
    for case in data.cases:
        sel = owners == case
        pred, ref = labels[sel], data.targets[sel]
        if data.task == "classification":
            out[case] = float(np.mean(pred == ref))
            continue
        classes = [c for c in sorted(set(np.unique(ref).tolist()) | set(np.unique(pred).tolist())) if c != 0]
        out[case] = float(np.mean([dice(ref == c, pred == c) for c in classes])) if classes else 1.0
    return out


def evaluate(predictor: BasePredictor, data: EvalData) -> dict[str, float]:
    """Per-case metric of ``predictor`` on ``data``."""
    return case_scores(predict_labels(predictor, data.images), data)


def summarize(values: list[float], *, seed: int, n_resamples: int = 1000) -> dict[str, Any]:
    """Mean with a 95 % percentile bootstrap CI over cases (``None`` bounds for fewer than 2 cases).

    Example
    -------
    >>> summarize([0.5, 0.7, 0.9], seed=0)["estimate"]
    0.7
    """
    arr = np.asarray(values, dtype=np.float64)
    est = round(float(arr.mean()), 6)
    if arr.size < 2 or np.allclose(arr, arr[0]):
        return {
            "estimate": est,
            "ci_low": None if arr.size < 2 else est,
            "ci_high": None if arr.size < 2 else est,
            "n": int(arr.size),
        }
    ci = bootstrap_ci(arr, np.mean, method="percentile", n_resamples=n_resamples, seed=seed)
    return {"estimate": est, "ci_low": round(float(ci.low), 6), "ci_high": round(float(ci.high), 6), "n": int(arr.size)}


__all__ = ["case_scores", "evaluate", "labels_from_probs", "metric_name", "predict_labels", "summarize"]
