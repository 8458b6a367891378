"""Classification metrics: confusion matrix, accuracy, sensitivity, specificity, PPV, NPV, F1, ROC/AUC.

Formulas: accuracy 000 A.10.1 d (A.1) and 001 D.11 (D.10, multi-class); precision/PPV A.10.1 e
(A.2); recall/sensitivity A.10.1 f (A.3) and 001 D.9 (D.8); specificity 001 D.10 (D.9); F1
A.10.1 g (A.4). 001 §9.1.1 c names them for classification QC. A ratio whose denominator is 0
(e.g. sensitivity with no positive case) is undefined and reported as ``None``.

Operating points are chosen by a stated rule: the Youden index (max sensitivity + specificity − 1)
or the highest threshold meeting a fixed sensitivity (or specificity). A case is called positive
when its score is ``>=`` the threshold.

Example
-------
>>> m = binary_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
>>> m.tp, m.fp, m.fn, m.tn, round(m.sensitivity, 3), m.specificity
(2, 1, 1, 1, 0.667, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aimd.core.errors import InvalidInputError
from aimd.metrics._validation import as_vector, check_same_length

__all__ = [
    "BinaryCounts",
    "RocCurve",
    "ThresholdChoice",
    "binary_metrics",
    "binary_truth",
    "choose_threshold",
    "confusion_matrix",
    "multiclass_accuracy",
    "roc_curve",
]


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


@dataclass(frozen=True)
class BinaryCounts:
    """A 2×2 confusion table and the rates read from it.

    Examples
    --------
    >>> BinaryCounts(tp=8, fp=2, fn=2, tn=8).f1
    0.8
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def n(self) -> int:
        """Number of cases."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def accuracy(self) -> float | None:
        """(TP + TN) / N — 000 A.1, 001 D.10."""
        return _ratio(self.tp + self.tn, self.n)

    @property
    def sensitivity(self) -> float | None:
        """TP / (TP + FN) — recall, 001 D.8, 000 A.3."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float | None:
        """TN / (TN + FP) — 001 D.9."""
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> float | None:
        """TP / (TP + FP) — precision, 000 A.2."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> float | None:
        """TN / (TN + FN)."""
        return _ratio(self.tn, self.tn + self.fn)

    @property
    def f1(self) -> float | None:
        """2·P·R / (P + R) = 2TP / (2TP + FP + FN) — 000 A.4."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (``None`` where a denominator is 0)."""
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
            "accuracy": self.accuracy,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "npv": self.npv,
            "f1": self.f1,
        }


def binary_truth(y_true: ArrayLike, positive: Any = 1, *, name: str = "truth") -> NDArray[np.bool_]:
    """``y_true == positive`` as booleans, after checking the column is one-dimensional.

    Examples
    --------
    >>> binary_truth(["tumour", "normal"], positive="tumour").tolist()
    [True, False]
    """
    arr = as_vector(y_true, name, numeric=False)
    if arr.dtype == bool:
        return arr.copy() if positive in (1, True) else ~arr
    if arr.dtype.kind in "iuf":
        try:
            return np.asarray(arr.astype(np.float64) == float(positive), dtype=bool)
        except (TypeError, ValueError):
            return np.zeros(len(arr), bool)
    return np.asarray(arr.astype(str) == str(positive), dtype=bool)


def binary_metrics(y_true: ArrayLike, y_pred: ArrayLike, positive: Any = 1) -> BinaryCounts:
    """Confusion counts of binary predictions against the truth.

    Parameters
    ----------
    y_true, y_pred:
        Labels of equal length; a case is positive when it equals ``positive``.

    Examples
    --------
    >>> binary_metrics(["a", "b", "a"], ["a", "a", "a"], positive="a").ppv
    0.6666666666666666
    """
    t = binary_truth(y_true, positive, name="truth")
    p = binary_truth(y_pred, positive, name="prediction")
    check_same_length(truth=t, prediction=p)
    return BinaryCounts(
        tp=int(np.count_nonzero(t & p)),
        fp=int(np.count_nonzero(~t & p)),
        fn=int(np.count_nonzero(t & ~p)),
        tn=int(np.count_nonzero(~t & ~p)),
    )


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any] | None = None) -> NDArray[np.int64]:
    """Confusion matrix ``N[i, j]`` = cases of true class ``i`` predicted as class ``j``.

    Examples
    --------
    >>> confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2]).tolist()
    [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    """
    t = as_vector(y_true, "truth", numeric=False)
    p = as_vector(y_pred, "prediction", numeric=False)
    check_same_length(truth=t, prediction=p)
    if len(t) == 0:
        raise InvalidInputError("confusion matrix needs at least one case")
    from sklearn import metrics as skm

    return np.asarray(skm.confusion_matrix(t, p, labels=labels), dtype=np.int64)


def multiclass_accuracy(matrix: ArrayLike) -> float:
    """Accuracy from a confusion matrix: trace / total — 001 D.11 (formula D.10).

    Examples
    --------
    >>> multiclass_accuracy([[5, 1], [2, 2]])
    0.7
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.sum() <= 0:
        raise InvalidInputError(f"need a square, non-empty confusion matrix, got shape {m.shape}")
    return float(np.trace(m) / m.sum())


@dataclass(frozen=True)
class RocCurve:
    """ROC curve points (threshold descending) and the area under it."""

    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    auc: float
    n_positive: int
    n_negative: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (the first threshold, +inf, is written as null)."""
        return {
            "auc": self.auc,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
            "fpr": self.fpr.tolist(),
            "tpr": self.tpr.tolist(),
            "thresholds": [float(t) if np.isfinite(t) else None for t in self.thresholds],
        }


def _scored(y_true: ArrayLike, scores: ArrayLike, positive: Any) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    t = binary_truth(y_true, positive)
    s = as_vector(scores, "score")
    check_same_length(truth=t, score=s)
    n_pos = int(t.sum())
    if n_pos == 0 or n_pos == len(t):
        raise InvalidInputError(
            f"ROC needs both classes; got {n_pos} positive of {len(t)} cases",
            hint=f"check the positive label ({positive!r}) and the truth column",
        )
    return t, s


def roc_curve(y_true: ArrayLike, scores: ArrayLike, positive: Any = 1) -> RocCurve:
    """ROC curve and AUC (001 §9.1.1 c), higher score meaning more likely positive.

    Examples
    --------
    >>> roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).auc
    0.75
    """
    from sklearn import metrics as skm

    t, s = _scored(y_true, scores, positive)
    fpr, tpr, thr = skm.roc_curve(t, s, drop_intermediate=False)
    return RocCurve(fpr, tpr, thr, float(skm.roc_auc_score(t, s)), int(t.sum()), int((~t).sum()))


@dataclass(frozen=True)
class ThresholdChoice:
    """An operating point and the rule that chose it."""

    threshold: float
    rule: str
    counts: BinaryCounts

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"threshold": self.threshold, "rule": self.rule, **self.counts.to_dict()}


def choose_threshold(
    y_true: ArrayLike,
    scores: ArrayLike,
    rule: Literal["youden", "sensitivity", "specificity"] = "youden",
    target: float | None = None,
    positive: Any = 1,
) -> ThresholdChoice:
    """Pick a score threshold by a stated rule.

    Parameters
    ----------
    rule:
        ``"youden"`` — maximise sensitivity + specificity − 1 (ties: the highest threshold);
        ``"sensitivity"`` — the highest threshold whose sensitivity is ``>= target``;
        ``"specificity"`` — the lowest threshold whose specificity is ``>= target``.
    target:
        Required for the fixed-sensitivity/specificity rules, in ``(0, 1]``.

    Examples
    --------
    >>> y, s = [0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.6, 0.4, 0.7, 0.9]
    >>> choose_threshold(y, s).threshold
    0.7
    >>> choose_threshold(y, s, "sensitivity", 1.0).threshold
    0.4
    """
    from sklearn import metrics as skm

    t, s = _scored(y_true, scores, positive)
    fpr, tpr, thr = skm.roc_curve(t, s, drop_intermediate=False)
    finite = np.isfinite(thr)
    fpr, tpr, thr = fpr[finite], tpr[finite], thr[finite]
    if rule == "youden":
        j = tpr - fpr
        idx = int(np.flatnonzero(j >= j.max() - 1e-12)[0])
        label = "youden: max sensitivity + specificity - 1"
    elif rule in ("sensitivity", "specificity"):
        if target is None or not 0 < target <= 1:
            raise InvalidInputError(f"rule '{rule}' needs a target in (0, 1], got {target}")
        if rule == "sensitivity":
            idx = int(np.flatnonzero(tpr >= target)[0])
            label = f"highest threshold with sensitivity >= {target}"
        else:
            ok = np.flatnonzero(1 - fpr >= target)
            idx = int(ok[-1]) if ok.size else 0
            label = f"lowest threshold with specificity >= {target}"
    else:
        raise InvalidInputError(f"rule must be youden, sensitivity or specificity, got {rule!r}")
    threshold = float(thr[idx])
    return ThresholdChoice(threshold, label, binary_metrics(t, s >= threshold, positive=True))
