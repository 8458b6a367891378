"""Statistics: DeLong against a direct O(m·n) computation, tests against statsmodels / scipy, CIs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportions_ztest

from aimd.core.errors import InvalidInputError
from aimd.metrics import (
    bootstrap_ci,
    chi_square_test,
    delong_auc,
    delong_test,
    mann_whitney,
    permutation_test,
    two_proportion_test,
)


def _delong_direct(y: np.ndarray, scores: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """DeLong (1988) written out: placement values from the pairwise kernel psi(x, y)."""
    pos, neg = [s[y == 1] for s in scores], [s[y == 0] for s in scores]
    k = len(scores)
    v10 = []
    v01 = []
    for r in range(k):
        psi = (pos[r][:, None] > neg[r][None, :]) + 0.5 * (pos[r][:, None] == neg[r][None, :])
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    v10, v01 = np.array(v10), np.array(v01)
    auc = v10.mean(axis=1)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.array([[np.sum((v10[a] - auc[a]) * (v10[b] - auc[b])) / (m - 1) for b in range(k)] for a in range(k)])
    s01 = np.array([[np.sum((v01[a] - auc[a]) * (v01[b] - auc[b])) / (n - 1) for b in range(k)] for a in range(k)])
    return auc, s10 / m + s01 / n


def test_delong_matches_direct_computation_and_sklearn_auc() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        n = int(rng.integers(8, 120))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        a = np.round(y * rng.uniform(0, 1.5) + rng.random(n), 1)  # rounded: ties
        b = np.round(0.5 * a + rng.random(n), 1)
        got = delong_auc(y, a, b)
        auc, cov = _delong_direct(y, [a, b])
        assert np.allclose(got.auc, auc) and np.allclose(got.covariance, cov, atol=1e-14)
        assert got.auc[0] == pytest.approx(roc_auc_score(y, a))
        t = delong_test(y, a, b)
        z = (auc[0] - auc[1]) / np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
        assert t.statistic == pytest.approx(z) and t.p_value == pytest.approx(2 * stats.norm.sf(abs(z)))


def test_two_proportion_matches_statsmodels() -> None:
    rng = np.random.default_rng(2)
    for _ in range(40):
        n1, n2 = (int(v) for v in rng.integers(5, 300, 2))
        x1, x2 = int(rng.integers(0, n1 + 1)), int(rng.integers(0, n2 + 1))
        if x1 + x2 in (0, n1 + n2):
            continue
        z, p = proportions_ztest([x1, x2], [n1, n2])
        r = two_proportion_test(x1, n1, x2, n2)
        assert r.statistic == pytest.approx(z) and r.p_value == pytest.approx(p)


def test_chi_square_and_mann_whitney_match_scipy() -> None:
    table = [[30, 10, 5], [20, 25, 12]]
    res = stats.chi2_contingency(table)
    got = chi_square_test(table)
    assert got.statistic == pytest.approx(res.statistic) and got.details["dof"] == 2
    a, b = [0.91, 0.88, 0.85, 0.9, 0.77], [0.7, 0.82, 0.75, 0.69, 0.8, 0.71]
    mw = mann_whitney(a, b)
    assert mw.p_value == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def test_permutation_test_exact_small_case() -> None:
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    # 20 splits of 6 values into groups of 3; |mean diff| >= 3 only for the two extreme splits
    r = permutation_test(a, b, n_resamples=100000, seed=0)
    assert r.statistic == pytest.approx(-3.0)
    assert r.p_value == pytest.approx(2 / 20)
    paired = permutation_test([1.0, 2.0, 3.0, 4.0], [1.5, 2.5, 3.5, 4.5], paired=True, n_resamples=1000)
    assert paired.p_value == pytest.approx(2 / 16)  # sign flips: only all-negative / all-positive as extreme


def test_bootstrap_coverage_of_the_mean_is_near_nominal() -> None:
    rng = np.random.default_rng(3)
    hits = {"percentile": 0, "bca": 0}
    reps = 120
    for i in range(reps):
        x = rng.exponential(1.0, 40)
        for method in hits:
            ci = bootstrap_ci(x, np.mean, method=method, n_resamples=999, seed=i, vectorized=True)  # type: ignore[arg-type]
            hits[method] += ci.low <= 1.0 <= ci.high
    for method, h in hits.items():
        assert 0.83 <= h / reps <= 0.99, (method, h / reps)


def test_bootstrap_is_reproducible_and_handles_degenerate_data() -> None:
    x = np.random.default_rng(4).normal(size=30)
    assert bootstrap_ci(x, np.mean, seed=5) == bootstrap_ci(x, np.mean, seed=5)
    flat = bootstrap_ci(np.ones(10), np.mean)
    assert (flat.low, flat.high) == (1.0, 1.0) and flat.note
    with pytest.raises(InvalidInputError, match="at least 2"):
        bootstrap_ci(np.ones(1), np.mean)


def test_statistics_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="both positive and negative"):
        delong_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(InvalidInputError, match="successes"):
        two_proportion_test(5, 4, 1, 10)
    with pytest.raises(InvalidInputError, match="all zero"):
        chi_square_test([[0, 0], [1, 2]])
