"""Agreement between raters: Cohen's (weighted) kappa, Fleiss' kappa, Pearson with CI, Bland–Altman.

001 §9.2 d uses kappa for categorical, attribute and text labels; §9.1.1 d/e name kappa and the
correlation coefficient; App. D.12 gives kappa (formulas D.11–D.12) and D.8 Pearson (D.7).
Intraclass correlation (§9.2 e) lives in :mod:`aimd.metrics.icc`.

Example
-------
>>> round(cohen_kappa([1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0]), 4)
0.6667
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from aimd.core.errors import InvalidInputError
from aimd.metrics._validation import as_vector, check_same_length

__all__ = [
    "BlandAltman",
    "PearsonResult",
    "bland_altman",
    "category_order",
    "cohen_kappa",
    "fleiss_kappa",
    "fleiss_kappa_from_counts",
    "kappa_from_confusion",
    "pearson",
]

Weights = Literal["linear", "quadratic"] | None


def kappa_from_confusion(matrix: ArrayLike, weights: Weights = None) -> float | None:
    """Cohen's kappa from a rater-by-rater confusion matrix ``N``.

    Unweighted: ``k = (Acc − p_e) / (1 − p_e)`` with ``Acc = ΣN_jj / ΣN`` and
    ``p_e = Σ_i (Σ_j N_ij)(Σ_j N_ji) / (ΣN)²`` — 001 D.12 (D.11, D.12). Weighted: ``1 − Σw·N / Σw·E``
    with disagreement weights ``|i − j|`` (linear) or ``(i − j)²`` (quadratic) over the category order
    and ``E`` the table expected from the margins. ``None`` when chance agreement is 1 (undefined).

    Examples
    --------
    >>> round(kappa_from_confusion([[20, 5], [10, 15]]), 4)
    0.4
    """
    n = np.asarray(matrix, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or n.sum() <= 0 or np.any(n < 0):
        raise InvalidInputError(f"need a square confusion matrix of counts, got shape {n.shape}")
    total = n.sum()
    if weights is None:
        acc = np.trace(n) / total
        pe = float(np.sum(n.sum(axis=1) * n.sum(axis=0))) / total**2
        return None if np.isclose(pe, 1.0) else float((acc - pe) / (1.0 - pe))
    idx = np.arange(n.shape[0])
    if weights == "linear":
        w = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)
    elif weights == "quadratic":
        w = ((idx[:, None] - idx[None, :]) ** 2).astype(np.float64)
    else:
        raise InvalidInputError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    expected = np.outer(n.sum(axis=1), n.sum(axis=0)) / total
    den = float(np.sum(w * expected))
    return None if den == 0 else float(1.0 - np.sum(w * n) / den)


def cohen_kappa(
    rater_a: ArrayLike, rater_b: ArrayLike, *, weights: Weights = None, labels: Sequence[Any] | None = None
) -> float | None:
    """Cohen's kappa between two raters' labels of the same items (001 D.12).

    Parameters
    ----------
    rater_a, rater_b:
        Category labels per item.
    weights:
        ``None`` (nominal), ``"linear"`` or ``"quadratic"`` (ordinal categories).
    labels:
        Category order for the weights; default the sorted union of both raters' labels.

    Examples
    --------
    >>> round(cohen_kappa([1, 2, 3, 3], [1, 2, 2, 3], weights="quadratic"), 4)
    0.8
    """
    a = as_vector(rater_a, "rater A", numeric=False)
    b = as_vector(rater_b, "rater B", numeric=False)
    check_same_length(rater_a=a, rater_b=b)
    if len(a) == 0:
        raise InvalidInputError("kappa needs at least one rated item")
    cats = list(labels) if labels is not None else sorted(set(a.tolist()) | set(b.tolist()), key=_sort_key)
    index = {c: i for i, c in enumerate(cats)}
    missing = (set(a.tolist()) | set(b.tolist())) - set(index)
    if missing:
        raise InvalidInputError(f"labels {sorted(missing, key=_sort_key)} are not among the given categories {cats}")
    table = np.zeros((len(cats), len(cats)), dtype=np.int64)
    np.add.at(table, ([index[v] for v in a.tolist()], [index[v] for v in b.tolist()]), 1)
    return kappa_from_confusion(table, weights)


def _sort_key(v: Any) -> tuple[int, Any]:
    return (0, float(v)) if isinstance(v, int | float | np.integer | np.floating) else (1, str(v))


def category_order(*raters: ArrayLike) -> list[Any]:
    """The category order kappa uses by default: numbers ascending, then text.

    Examples
    --------
    >>> category_order([10, 2], [1, 2])
    [1, 2, 10]
    """
    values: set[Any] = set()
    for r in raters:
        values |= set(np.asarray(r).reshape(-1).tolist())
    return sorted(values, key=_sort_key)


def fleiss_kappa_from_counts(counts: ArrayLike) -> float | None:
    """Fleiss' kappa from an items × categories table of how many raters chose each category.

    Every item needs the same number of ratings. ``None`` when chance agreement is 1.

    Examples
    --------
    >>> round(fleiss_kappa_from_counts([[3, 0], [0, 3], [2, 1]]), 4)
    0.55
    """
    t = np.asarray(counts, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 1 or np.any(t < 0):
        raise InvalidInputError(f"need an items × categories table of counts, got shape {t.shape}")
    per_item = t.sum(axis=1)
    if not np.all(per_item == per_item[0]) or per_item[0] < 2:
        raise InvalidInputError(
            "Fleiss' kappa needs the same number (>= 2) of ratings for every item",
            hint="drop items with missing ratings",
        )
    n_items, n_raters = t.shape[0], per_item[0]
    p_j = t.sum(axis=0) / (n_items * n_raters)
    p_i = (np.sum(t**2, axis=1) - n_raters) / (n_raters * (n_raters - 1))
    p_bar, p_e = p_i.mean(), float(np.sum(p_j**2))
    return None if np.isclose(p_e, 1.0) else float((p_bar - p_e) / (1.0 - p_e))


def fleiss_kappa(ratings: ArrayLike) -> float | None:
    """Fleiss' kappa for three or more raters: ``ratings`` is items × raters of category labels.

    Examples
    --------
    >>> round(fleiss_kappa([[1, 1, 1], [2, 2, 2], [1, 1, 2]]), 4)
    0.55
    """
    r = np.asarray(ratings, dtype=object)
    if r.ndim != 2 or r.shape[1] < 2:
        raise InvalidInputError(f"ratings must be items × raters (>= 2 raters), got shape {r.shape}")
    flat = r.ravel().tolist()
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in flat):
        raise InvalidInputError("ratings hold missing values", hint="drop items with missing ratings")
    cats = sorted(set(flat), key=_sort_key)
    index = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((r.shape[0], len(cats)), dtype=np.int64)
    for i, row in enumerate(r):
        for v in row:
            counts[i, index[v]] += 1
    return fleiss_kappa_from_counts(counts)


@dataclass(frozen=True)
class PearsonResult:
    """Pearson correlation with its p-value and Fisher-z confidence interval."""

    r: float
    p_value: float
    ci_low: float | None
    ci_high: float | None
    confidence: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "r": self.r,
            "p_value": self.p_value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "confidence": self.confidence,
            "n": self.n,
            "ci_method": "Fisher z",
        }


def pearson(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> PearsonResult:
    """Pearson correlation coefficient (001 D.8, formula D.7) with a Fisher-z CI (needs n > 3).

    Examples
    --------
    >>> res = pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5])
    >>> round(res.r, 4), round(res.ci_low, 3)
    (0.7746, -0.34)
    """
    a, b = as_vector(x, "x"), as_vector(y, "y")
    n = check_same_length(x=a, y=b)
    if n < 3:
        raise InvalidInputError(f"Pearson correlation needs at least 3 pairs, got {n}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        raise InvalidInputError("Pearson correlation is undefined for a constant column")
    res = stats.pearsonr(a, b)
    low = high = None
    if n > 3:
        ci = res.confidence_interval(confidence_level=confidence)
        low, high = float(ci.low), float(ci.high)
    return PearsonResult(float(res.statistic), float(res.pvalue), low, high, confidence, n)


@dataclass(frozen=True)
class BlandAltman:
    """Bland–Altman bias and limits of agreement of two measurement methods (a − b)."""

    bias: float
    sd: float
    lower: float
    upper: float
    bias_ci: tuple[float, float]
    lower_ci: tuple[float, float]
    upper_ci: tuple[float, float]
    confidence: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "bias": self.bias,
            "sd": self.sd,
            "loa_lower": self.lower,
            "loa_upper": self.upper,
            "bias_ci": list(self.bias_ci),
            "loa_lower_ci": list(self.lower_ci),
            "loa_upper_ci": list(self.upper_ci),
            "confidence": self.confidence,
            "n": self.n,
            "method": "limits = bias ± z·SD (SD with n−1); CIs by t, limits' SE = SD·sqrt(3/n) (Bland & Altman 1999)",
        }


def bland_altman(a: ArrayLike, b: ArrayLike, confidence: float = 0.95) -> BlandAltman:
    """Bias and limits of agreement of paired measurements ``a`` and ``b``.

    Examples
    --------
    >>> ba = bland_altman([10, 12, 14, 16], [11, 12, 13, 17])
    >>> ba.bias, round(ba.upper, 3)
    (-0.25, 1.627)
    """
    x, y = as_vector(a, "a"), as_vector(b, "b")
    n = check_same_length(a=x, b=y)
    if n < 3:
        raise InvalidInputError(f"Bland–Altman needs at least 3 pairs, got {n}")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    d = x - y
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    t = float(stats.t.ppf(0.5 + confidence / 2, n - 1))
    se_bias, se_loa = sd / np.sqrt(n), sd * np.sqrt(3.0 / n)
    lower, upper = bias - z * sd, bias + z * sd
    return BlandAltman(
        bias=bias,
        sd=sd,
        lower=lower,
        upper=upper,
        bias_ci=(bias - t * se_bias, bias + t * se_bias),
        lower_ci=(lower - t * se_loa, lower + t * se_loa),
        upper_ci=(upper - t * se_loa, upper + t * se_loa),
        confidence=confidence,
        n=n,
    )
