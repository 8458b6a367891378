"""Tests and paired intervals shared by the characteristics (000 A.12.1 a, A.10 comparisons).

:func:`subgroup_test` tests that a metric does not differ between groups and says how small a
p-value the group sizes can reach at all (:func:`min_attainable_p`): with two cases per site no
test can reach α = 0.05, and the verdict must then be *inconclusive*, not *conform*.
:func:`paired_difference` is the mean per-case difference of two models on the same cases with a
paired bootstrap CI (gains over a baseline, metric drops of a quantised or private copy).

Example
-------
>>> min_attainable_p([2, 2])
0.333333
>>> subgroup_test({"A": [0.8, 0.82, 0.79], "B": [0.5, 0.52, 0.49]}, seed=0)["test"]
'permutation (difference of means)'
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from scipy import stats

from aimd.evaluation.support.scoring import summarize
from aimd.metrics import permutation_test

PERMUTATIONS = 9999


def min_attainable_p(sizes: list[int], *, n_resamples: int = PERMUTATIONS) -> float:
    """Smallest p-value the group test of :func:`subgroup_test` can return for groups of ``sizes``.

    Two groups: the two-sided permutation test reaches at best ``2 / C(n1 + n2, n1)`` (exact) or
    ``2 / (n_resamples + 1)`` (Monte Carlo). More: Kruskal–Wallis with the groups perfectly separated.

    Example
    -------
    >>> min_attainable_p([4, 4]) < 0.05, min_attainable_p([3, 3]) < 0.05
    (True, False)
    """
    if len(sizes) < 2:
        return 1.0
    if len(sizes) == 2:
        exact = 2.0 / math.comb(sum(sizes), sizes[0])
        return round(min(1.0, max(exact, 2.0 / (n_resamples + 1))), 6)
    best = 1.0
    for order in set(itertools.permutations(sizes)):
        start, groups = 0, []
        for n in order:
            groups.append(np.arange(start, start + n, dtype=np.float64))
            start += n
        best = min(best, float(stats.kruskal(*groups).pvalue))
    return round(best, 6)


def subgroup_test(groups: dict[str, list[float]], *, seed: int) -> dict[str, Any]:
    """Test that the metric does not differ between groups (A.12.1 a).

    Two groups: two-sided permutation test of the difference of means; more: Kruskal–Wallis.
    Groups with fewer than two cases are left out. ``min_p`` is the smallest p-value these group
    sizes allow (:func:`min_attainable_p`).
    """
    usable = {k: v for k, v in groups.items() if len(v) >= 2}
    sizes = [len(v) for v in usable.values()]
    base = {"groups": sorted(usable), "sizes": dict(zip(usable, sizes, strict=True)), "min_p": min_attainable_p(sizes)}
    if len(usable) < 2:
        return {
            **base,
            "test": None,
            "p_value": None,
            "note": "fewer than two groups with at least two cases: no test possible",
        }
    if len(usable) == 2:
        a, b = (np.asarray(v, dtype=np.float64) for v in usable.values())
        res = permutation_test(a, b, n_resamples=PERMUTATIONS, seed=seed)
        return {
            **base,
            "test": "permutation (difference of means)",
            "statistic": float(res.statistic),
            "p_value": float(res.p_value),
        }
    values = [np.asarray(v, dtype=np.float64) for v in usable.values()]
    if all(np.allclose(v, values[0][0]) for v in values):
        return {**base, "test": "Kruskal–Wallis", "statistic": 0.0, "p_value": 1.0}
    h, p = stats.kruskal(*values)
    return {**base, "test": "Kruskal–Wallis", "statistic": float(h), "p_value": float(p)}


def paired_difference(
    scores: dict[str, float], baseline: dict[str, float], *, seed: int, n_resamples: int = 1000
) -> dict[str, Any]:
    """Mean per-case difference ``scores − baseline`` over the cases both scored, with a paired bootstrap CI.

    Example
    -------
    >>> paired_difference({"a": 0.6, "b": 0.7}, {"a": 0.5, "b": 0.5}, seed=0)["estimate"]
    0.15
    """
    cases = [c for c in scores if c in baseline]
    return summarize([scores[c] - baseline[c] for c in cases], seed=seed, n_resamples=n_resamples)


__all__ = ["PERMUTATIONS", "min_attainable_p", "paired_difference", "subgroup_test"]
