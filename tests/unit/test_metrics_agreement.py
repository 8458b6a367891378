"""Agreement pinned to scikit-learn (Cohen's kappa), statsmodels (Fleiss), pingouin (ICC), scipy (Pearson)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from aimd.core.errors import InvalidInputError
from aimd.metrics import bland_altman, cohen_kappa, fleiss_kappa, icc, kappa_from_confusion, pearson


def test_cohen_kappa_matches_sklearn_plain_and_weighted() -> None:
    rng = np.random.default_rng(1)
    for _ in range(80):
        n, k = int(rng.integers(5, 80)), int(rng.integers(2, 6))
        a = rng.integers(0, k, n)
        b = np.where(rng.random(n) < 0.6, a, rng.integers(0, k, n))
        for weights in (None, "linear", "quadratic"):
            expected = cohen_kappa_score(a, b, weights=weights, labels=list(range(k)))
            got = cohen_kappa(a, b, weights=weights, labels=list(range(k)))
            if np.isnan(expected):
                assert got is None
            else:
                assert got == pytest.approx(expected, abs=1e-12)


def test_kappa_is_formula_d11_d12_on_the_confusion_matrix() -> None:
    n = np.array([[20, 5, 1], [4, 30, 6], [2, 3, 29]], dtype=float)
    total = n.sum()
    acc = np.trace(n) / total  # D.10
    pe = sum(n[i, :].sum() * n[:, i].sum() for i in range(3)) / total**2  # D.12
    assert kappa_from_confusion(n) == pytest.approx((acc - pe) / (1 - pe))  # D.11


def test_kappa_undefined_when_chance_agreement_is_one() -> None:
    assert cohen_kappa(["a", "a", "a"], ["a", "a", "a"]) is None


def test_fleiss_matches_statsmodels() -> None:
    rng = np.random.default_rng(2)
    for _ in range(50):
        n, raters, k = int(rng.integers(3, 40)), int(rng.integers(3, 7)), int(rng.integers(2, 5))
        truth = rng.integers(0, k, n)
        ratings = np.where(rng.random((n, raters)) < 0.7, truth[:, None], rng.integers(0, k, (n, raters)))
        table, _ = aggregate_raters(ratings)
        expected = sm_fleiss(table, method="fleiss")
        got = fleiss_kappa(ratings)
        if np.isnan(expected):
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def _mcgraw_wong_a1_ci(x: np.ndarray, conf: float) -> tuple[float, float]:
    """ICC(A,1) interval written from McGraw & Wong (1996), Table 7, with their a/b/v terms."""
    n, k = x.shape
    grand = x.mean()
    msr = k * np.sum((x.mean(1) - grand) ** 2) / (n - 1)
    msc = n * np.sum((x.mean(0) - grand) ** 2) / (k - 1)
    mse = (np.sum((x - grand) ** 2) - msr * (n - 1) - msc * (k - 1)) / ((n - 1) * (k - 1))
    rho = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    a = k * rho / (n * (1 - rho))
    b = 1 + k * rho * (n - 1) / (n * (1 - rho))
    v = (a * msc + b * mse) ** 2 / ((a * msc) ** 2 / (k - 1) + (b * mse) ** 2 / ((n - 1) * (k - 1)))
    q = 1 - (1 - conf) / 2
    fs, fss = stats.f.ppf(q, n - 1, v), stats.f.ppf(q, v, n - 1)
    low = n * (msr - fs * mse) / (fs * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (fss * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fss * msr)
    return low, high


def test_icc_matches_pingouin_all_six_forms() -> None:
    rng = np.random.default_rng(3)
    names = {
        "ICC1": "ICC(1,1)",
        "ICC2": "ICC(A,1)",
        "ICC3": "ICC(C,1)",
        "ICC1k": "ICC(1,k)",
        "ICC2k": "ICC(A,k)",
        "ICC3k": "ICC(C,k)",
    }
    for _ in range(30):
        n, k = int(rng.integers(4, 25)), int(rng.integers(2, 6))
        x = rng.normal(size=(n, 1)) * rng.uniform(0.2, 3) + rng.normal(size=(1, k)) + rng.normal(size=(n, k))
        df = pd.DataFrame([(t, r, x[t, r]) for t in range(n) for r in range(k)], columns=["t", "r", "y"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = pg.intraclass_corr(df, "t", "r", "y").set_index("Type")
        ours = icc(x)
        for form, pname in names.items():
            row = ref.loc[pname]
            got = ours[form]
            assert got.value == pytest.approx(row["ICC"], abs=1e-10)
            assert got.f == pytest.approx(row["F"], rel=1e-10)
            assert got.p_value == pytest.approx(row["pval"], rel=1e-8, abs=1e-300)
            # pingouin rounds its CI95 to 2 decimals
            assert abs(got.ci_low - row["CI95"][0]) <= 0.005 + 1e-9
            assert abs(got.ci_high - row["CI95"][1]) <= 0.005 + 1e-9
        low, high = _mcgraw_wong_a1_ci(x, 0.95)
        assert ours["ICC2"].ci_low == pytest.approx(low, abs=1e-9)
        assert ours["ICC2"].ci_high == pytest.approx(high, abs=1e-9)


def test_icc_names_both_conventions() -> None:
    r = icc([[1, 2], [3, 3], [5, 6], [2, 2.5]])["ICC2"]
    assert r.shrout_fleiss == "ICC(2,1)" and r.description.startswith("ICC(A,1)")


def test_pearson_matches_scipy_and_fisher_z() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    res = pearson(x, y)
    assert res.r == pytest.approx(np.corrcoef(x, y)[0, 1])  # 001 D.7
    z, se = np.arctanh(res.r), 1 / np.sqrt(40 - 3)
    assert res.ci_low == pytest.approx(np.tanh(z - 1.959963984540054 * se), abs=1e-9)
    assert res.ci_high == pytest.approx(np.tanh(z + 1.959963984540054 * se), abs=1e-9)
    assert res.p_value == pytest.approx(stats.pearsonr(x, y).pvalue)


def test_bland_altman_on_the_published_peak_flow_data() -> None:
    # Bland & Altman (1986) Lancet: Wright vs mini-Wright peak flow meters, first readings, 17 subjects.
    wright = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
    mini = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
    ba = bland_altman(wright, mini)
    assert ba.bias == pytest.approx(-2.1, abs=0.05)  # paper: mean difference -2.1 l/min
    assert ba.sd == pytest.approx(38.8, abs=0.05)  # paper: SD 38.8 l/min
    assert ba.lower == pytest.approx(-2.1 - 1.96 * 38.8, abs=0.3)  # paper (2 SD): -79.7 to 75.5
    assert ba.upper == pytest.approx(-2.1 + 1.96 * 38.8, abs=0.3)


def test_agreement_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="same number"):
        from aimd.metrics import fleiss_kappa_from_counts

        fleiss_kappa_from_counts([[2, 1], [1, 1]])
    with pytest.raises(InvalidInputError, match="constant"):
        pearson([1, 1, 1, 1], [1, 2, 3, 4])
    with pytest.raises(InvalidInputError, match="missing"):
        icc([[1, 2], [np.nan, 3], [4, 5]])
    with pytest.raises(InvalidInputError, match="not among the given categories"):
        cohen_kappa([1, 2], [1, 3], labels=[1, 2])
