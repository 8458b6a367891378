"""Classification metrics pinned to scikit-learn (000 A.10.1, 001 D.9–D.11)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from aimd.core.errors import InvalidInputError
from aimd.metrics import (
    ClassificationAccumulator,
    binary_metrics,
    choose_threshold,
    confusion_matrix,
    multiclass_accuracy,
    roc_curve,
)


def test_binary_rates_match_sklearn_on_random_cases() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(4, 60))
        y = rng.integers(0, 2, n)
        p = np.where(rng.random(n) < 0.7, y, 1 - y)
        if y.min() == y.max() or p.min() == p.max():
            continue
        m = binary_metrics(y, p)
        assert m.accuracy == pytest.approx(skm.accuracy_score(y, p))
        assert m.sensitivity == pytest.approx(skm.recall_score(y, p))
        assert m.specificity == pytest.approx(skm.recall_score(y, p, pos_label=0))
        assert m.ppv == pytest.approx(skm.precision_score(y, p, zero_division=0))
        assert m.npv == pytest.approx(skm.precision_score(y, p, pos_label=0, zero_division=0))
        assert m.f1 == pytest.approx(skm.f1_score(y, p, zero_division=0))
        tn, fp, fn, tp = skm.confusion_matrix(y, p, labels=[0, 1]).ravel()
        assert (m.tp, m.fp, m.fn, m.tn) == (tp, fp, fn, tn)


def test_multiclass_accuracy_is_trace_over_total() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 4, 200))
    cm = confusion_matrix(y, p)
    assert np.array_equal(cm, skm.confusion_matrix(y, p))
    assert multiclass_accuracy(cm) == pytest.approx(skm.accuracy_score(y, p))  # 001 D.10


def test_roc_and_auc_match_sklearn() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        n = int(rng.integers(6, 80))
        y = rng.integers(0, 2, n)
        if y.min() == y.max():
            continue
        s = np.round(y * rng.uniform(0, 1) + rng.random(n), 2)  # rounded: ties
        r = roc_curve(y, s)
        assert r.auc == pytest.approx(skm.roc_auc_score(y, s))
        fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
        assert np.allclose(r.fpr, fpr) and np.allclose(r.tpr, tpr)


def test_thresholds_by_rule_are_optimal_by_brute_force() -> None:
    rng = np.random.default_rng(4)
    for _ in range(20):
        n = 50
        y = rng.integers(0, 2, n)
        s = np.round(y * 0.4 + rng.random(n), 2)
        cands = np.unique(s)
        sens = np.array([np.mean(s[y == 1] >= t) for t in cands])
        spec = np.array([np.mean(s[y == 0] < t) for t in cands])
        j = sens + spec - 1
        best = choose_threshold(y, s, "youden")
        assert best.counts.sensitivity + best.counts.specificity - 1 == pytest.approx(j.max())
        assert best.threshold == pytest.approx(cands[np.flatnonzero(np.isclose(j, j.max()))].max())
        target = 0.8
        chosen = choose_threshold(y, s, "sensitivity", target)
        assert chosen.threshold == pytest.approx(cands[sens >= target].max())
        assert chosen.counts.sensitivity >= target


def test_string_labels_and_positive_class() -> None:
    m = binary_metrics(["tumour", "normal", "tumour"], ["tumour", "tumour", "normal"], positive="tumour")
    assert (m.tp, m.fp, m.fn, m.tn) == (1, 1, 1, 0)
    assert m.specificity == 0.0
    assert binary_metrics([0, 0], [0, 0]).sensitivity is None  # no positives: undefined, not 0


def test_accumulator_pools_batches_and_reports_delong_ci() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 120)
    s = y * 0.5 + rng.random(120)
    acc = ClassificationAccumulator()
    for part in np.array_split(np.arange(120), 4):
        acc.update(y[part], scores=s[part], y_pred=(s[part] > 0.75).astype(int))
    out = acc.aggregate()
    assert out["auc"]["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["auc"]["ci_low"] < out["auc"]["auc"] < out["auc"]["ci_high"]
    assert out["from_labels"]["f1"] == pytest.approx(skm.f1_score(y, s > 0.75))
    with pytest.raises(InvalidInputError, match="same kinds"):
        acc.update([1], scores=[0.3])


def test_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="same length"):
        binary_metrics([1, 0], [1])
    with pytest.raises(InvalidInputError, match="both classes"):
        roc_curve([1, 1, 1], [0.2, 0.3, 0.4])
    with pytest.raises(InvalidInputError, match="NaN"):
        roc_curve([1, 0], [0.2, float("nan")])
    with pytest.raises(InvalidInputError, match="target"):
        choose_threshold([1, 0], [0.2, 0.1], "sensitivity")
