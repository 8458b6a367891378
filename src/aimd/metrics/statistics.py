"""Statistics for reports: bootstrap CIs, DeLong for AUC, and tests for subgroup differences.

* Bootstrap confidence intervals (percentile and BCa) wrap :func:`scipy.stats.bootstrap` with a
  fixed seed, so every report can be reproduced.
* DeLong's method (DeLong et al. 1988, fast form of Sun & Xu 2014) gives the variance of an AUC,
  its confidence interval and the paired test of two correlated AUCs — missing from the stats
  libraries aimd builds on, so it is written here and tested against a direct O(m·n) computation.
* Subgroup differences (000 App. A.12.1 a — no significant statistical bias between subgroups):
  two-proportion z-test, chi-square test of independence, Mann–Whitney U and a permutation test
  of any metric difference.

Example
-------
>>> ci = bootstrap_ci([0.81, 0.85, 0.9, 0.78, 0.88, 0.92, 0.84], np.mean, seed=1)
>>> ci.low < ci.estimate < ci.high
True
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from aimd.core.errors import InvalidInputError
from aimd.metrics._validation import as_vector, check_same_length

__all__ = [
    "BootstrapCI",
    "DelongResult",
    "TestResult",
    "bootstrap_ci",
    "chi_square_test",
    "delong_auc",
    "delong_test",
    "mann_whitney",
    "permutation_test",
    "two_proportion_test",
]


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n_resamples: int
    seed: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "estimate": self.estimate,
            "ci_low": self.low,
            "ci_high": self.high,
            "confidence": self.confidence,
            "method": self.method,
            "n_resamples": self.n_resamples,
            "seed": self.seed,
            "note": self.note,
        }


def bootstrap_ci(
    data: ArrayLike | Sequence[ArrayLike],
    statistic: Callable[..., float],
    *,
    confidence: float = 0.95,
    method: Literal["bca", "percentile"] = "bca",
    n_resamples: int = 2000,
    seed: int = 0,
    vectorized: bool = False,
) -> BootstrapCI:
    """Bootstrap CI of ``statistic`` over cases (arrays in a tuple are resampled together, paired).

    Parameters
    ----------
    data:
        One array of per-case values, or a tuple of equal-length arrays (e.g. truth and score).
    statistic:
        ``statistic(*arrays) -> float``; with ``vectorized=True`` it must accept ``axis=-1``.
    method:
        ``"bca"`` (bias-corrected and accelerated) or ``"percentile"``.
    seed:
        Seed of the resampling generator (recorded in the result).

    When every resample gives the same value the interval collapses to the estimate; when BCa
    is undefined for degenerate data the percentile interval is used and ``note`` says so.

    Examples
    --------
    >>> ci = bootstrap_ci(np.arange(20.0), np.mean, method="percentile", seed=0)
    >>> ci.estimate, ci.method
    (9.5, 'percentile')
    """
    arrays = _as_arrays(data)
    n = check_same_length(**{f"data[{i}]": a for i, a in enumerate(arrays)})
    if method not in ("bca", "percentile"):
        raise InvalidInputError(f"method must be 'bca' or 'percentile', got {method!r}")
    if not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    estimate = float(statistic(*arrays))
    if n < 2:
        raise InvalidInputError(f"a bootstrap CI needs at least 2 cases, got {n}")

    def run(m: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return stats.bootstrap(
                tuple(arrays),
                statistic,
                n_resamples=n_resamples,
                paired=True,
                vectorized=vectorized,
                confidence_level=confidence,
                method="BCa" if m == "bca" else "percentile",
                rng=np.random.default_rng(seed),
            )

    res = run(method)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    note = None
    dist = np.asarray(res.bootstrap_distribution)
    undefined = ~np.isfinite(dist)
    if undefined.any():
        kept = dist[~undefined]
        if kept.size == 0:
            raise InvalidInputError("the statistic is undefined on every bootstrap resample")
        alpha = (1 - confidence) / 2
        low, high = (float(v) for v in np.quantile(kept, [alpha, 1 - alpha]))
        note = f"{int(undefined.sum())} resamples gave an undefined value (dropped); percentile interval"
    elif np.all(dist == dist.flat[0]):
        low = high = float(dist.flat[0])
        note = "every resample gave the same value"
    elif not (np.isfinite(low) and np.isfinite(high)):
        res = run("percentile")
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        note = "BCa undefined for these data; percentile interval used"
    return BootstrapCI(estimate, low, high, confidence, method, n_resamples, seed, note)


def _as_arrays(data: ArrayLike | Sequence[ArrayLike]) -> list[NDArray[Any]]:
    if isinstance(data, tuple):
        return [np.asarray(a) for a in data]
    arr = np.asarray(data)
    if arr.ndim != 1:
        raise InvalidInputError(f"bootstrap data must be one array of per-case values or a tuple, got {arr.shape}")
    return [arr]


@dataclass(frozen=True)
class DelongResult:
    """AUC(s) with the DeLong covariance."""

    auc: NDArray[np.float64]
    covariance: NDArray[np.float64]
    n_positive: int
    n_negative: int

    def ci(self, confidence: float = 0.95, index: int = 0) -> tuple[float, float]:
        """Normal-approximation CI of one AUC, clipped to [0, 1]."""
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        se = float(np.sqrt(max(self.covariance[index, index], 0.0)))
        a = float(self.auc[index])
        return max(0.0, a - z * se), min(1.0, a + z * se)


def _truth_scores(y_true: ArrayLike, scores: Sequence[ArrayLike]) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    t = as_vector(y_true, "truth", numeric=False)
    uniq = set(np.unique(t).tolist())
    if not uniq <= {0, 1}:
        raise InvalidInputError(f"truth must be 0/1 (or bool), got values {sorted(map(str, uniq))}")
    truth = t.astype(bool)
    s = np.vstack([as_vector(x, "score") for x in scores])
    check_same_length(truth=truth, score=s[0])
    if truth.all() or not truth.any():
        raise InvalidInputError("AUC needs both positive and negative cases")
    return truth, s


def delong_auc(y_true: ArrayLike, *scores: ArrayLike) -> DelongResult:
    """AUCs of one or more score vectors on the same cases and their DeLong covariance matrix.

    Examples
    --------
    >>> r = delong_auc([0, 0, 1, 1, 0, 1], [0.1, 0.3, 0.35, 0.8, 0.4, 0.9])
    >>> round(float(r.auc[0]), 4)
    0.8889
    """
    if not scores:
        raise InvalidInputError("delong_auc needs at least one score vector")
    truth, s = _truth_scores(y_true, scores)
    pos, neg = s[:, truth], s[:, ~truth]
    m, n = pos.shape[1], neg.shape[1]
    tx = stats.rankdata(pos, axis=1)
    ty = stats.rankdata(neg, axis=1)
    tz = stats.rankdata(np.hstack([pos, neg]), axis=1)
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2.0) / n
    v10 = (tz[:, :m] - tx) / n  # structural components of the positives
    v01 = 1.0 - (tz[:, m:] - ty) / m  # ... and of the negatives
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(s), len(s)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(s), len(s)))
    return DelongResult(auc, s10 / m + s01 / n, m, n)


@dataclass(frozen=True)
class TestResult:
    """A hypothesis test: statistic, two-sided p-value, and what was tested."""

    test: str
    statistic: float
    p_value: float
    details: dict[str, Any] = field(default_factory=dict)

    __test__ = False  # not a pytest test class

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {"test": self.test, "statistic": self.statistic, "p_value": self.p_value, **self.details}


def delong_test(y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike) -> TestResult:
    """DeLong's test that two correlated AUCs (same cases) are equal.

    Examples
    --------
    >>> y = [0, 0, 0, 1, 1, 1, 0, 1]
    >>> r = delong_test(y, [.1, .2, .3, .7, .8, .9, .4, .6], [.3, .1, .6, .5, .4, .9, .2, .7])
    >>> r.details["auc_a"], round(r.p_value, 3)
    (1.0, 0.386)
    """
    r = delong_auc(y_true, scores_a, scores_b)
    var = float(r.covariance[0, 0] + r.covariance[1, 1] - 2 * r.covariance[0, 1])
    diff = float(r.auc[0] - r.auc[1])
    if var <= 0:
        z, p = (0.0, 1.0) if diff == 0 else (float(np.sign(diff) * np.inf), 0.0)
    else:
        z = diff / np.sqrt(var)
        p = float(2 * stats.norm.sf(abs(z)))
    return TestResult(
        "DeLong paired AUC test",
        float(z),
        p,
        {"auc_a": float(r.auc[0]), "auc_b": float(r.auc[1]), "difference": diff},
    )


def two_proportion_test(successes_a: int, n_a: int, successes_b: int, n_b: int) -> TestResult:
    """Two-sided z-test of equal proportions with the pooled standard error.

    Examples
    --------
    >>> r = two_proportion_test(45, 50, 30, 50)
    >>> round(r.statistic, 3), round(r.p_value, 4)
    (3.464, 0.0005)
    """
    for name, (x, n) in {"a": (successes_a, n_a), "b": (successes_b, n_b)}.items():
        if n <= 0 or not 0 <= x <= n:
            raise InvalidInputError(f"group {name}: need 0 <= successes <= n and n > 0, got {x} of {n}")
    pa, pb = successes_a / n_a, successes_b / n_b
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        z, p = 0.0, 1.0
    else:
        z = (pa - pb) / se
        p = float(2 * stats.norm.sf(abs(z)))
    return TestResult("two-proportion z-test (pooled)", float(z), p, {"proportion_a": pa, "proportion_b": pb})


def chi_square_test(table: ArrayLike, correction: bool = True) -> TestResult:
    """Chi-square test of independence on a contingency table (groups × outcomes).

    Examples
    --------
    >>> round(chi_square_test([[45, 5], [30, 20]]).p_value, 4)
    0.0012
    """
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or min(t.shape) < 2 or np.any(t < 0):
        raise InvalidInputError(f"need a contingency table of counts with >= 2 rows and columns, got {t.shape}")
    if np.any(t.sum(axis=0) == 0) or np.any(t.sum(axis=1) == 0):
        raise InvalidInputError("a row or column of the contingency table is all zero")
    res = stats.chi2_contingency(t, correction=correction)
    return TestResult(
        "chi-square test of independence" + (" (Yates)" if correction and t.shape == (2, 2) else ""),
        float(res.statistic),
        float(res.pvalue),
        {"dof": int(res.dof)},
    )


def mann_whitney(a: ArrayLike, b: ArrayLike) -> TestResult:
    """Two-sided Mann–Whitney U test of two independent samples.

    Examples
    --------
    >>> mann_whitney([1, 2, 3, 4], [5, 6, 7, 8]).statistic
    0.0
    """
    x, y = as_vector(a, "group a"), as_vector(b, "group b")
    if len(x) == 0 or len(y) == 0:
        raise InvalidInputError("Mann–Whitney needs two non-empty groups")
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    return TestResult(
        "Mann-Whitney U (two-sided)", float(res.statistic), float(res.pvalue), {"n_a": len(x), "n_b": len(y)}
    )


def _mean_difference(x: NDArray[Any], y: NDArray[Any], axis: int = -1) -> Any:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_test(
    a: ArrayLike,
    b: ArrayLike,
    statistic: Callable[..., float] | None = None,
    *,
    paired: bool = False,
    n_resamples: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Two-sided permutation test of a metric difference between two groups.

    Parameters
    ----------
    a, b:
        Per-case values (e.g. Dice per case) of two subgroups, or of two methods on the same
        cases when ``paired``.
    statistic:
        ``statistic(a, b) -> float``; default the difference of means.
    paired:
        Swap values within pairs instead of reassigning cases to groups.

    Examples
    --------
    >>> r = permutation_test([0.9, 0.85, 0.88, 0.91], [0.7, 0.72, 0.69, 0.75], seed=0)
    >>> round(r.statistic, 4), r.p_value < 0.05
    (0.17, True)
    """
    x, y = as_vector(a, "group a"), as_vector(b, "group b")
    if paired:
        check_same_length(a=x, b=y)
    if len(x) < 2 or len(y) < 2:
        raise InvalidInputError("a permutation test needs at least 2 cases per group")
    stat = statistic or _mean_difference
    res = stats.permutation_test(
        (x, y),
        stat,
        permutation_type="samples" if paired else "independent",
        vectorized=statistic is None,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return TestResult(
        "permutation test" + (" (paired)" if paired else ""),
        float(res.statistic),
        float(res.pvalue),
        {"n_resamples": n_resamples, "seed": seed},
    )
