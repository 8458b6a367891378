"""000 §6.3.7 generalization: held-out metric, subgroups by site, stress samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_evaluation_support import context, dice_np, disks

from aimd.evaluation import Claims, Generalization, GeneralizationClaim, Verdict, min_attainable_p, subgroup_test
from aimd.evaluation.runner import run_characteristic


def test_subgroup_test_separates_distinct_groups() -> None:
    rng = np.random.default_rng(0)
    values = list(rng.normal(0.8, 0.02, 8))
    same = subgroup_test({"A": values, "B": values[::-1]}, seed=0)
    diff = subgroup_test({"A": list(rng.normal(0.8, 0.02, 8)), "B": list(rng.normal(0.5, 0.02, 8))}, seed=0)
    assert same["p_value"] > 0.05 and diff["p_value"] < 0.01
    three = subgroup_test({"A": [0.9, 0.91, 0.92], "B": [0.5, 0.51, 0.52], "C": [0.7, 0.71, 0.72]}, seed=0)
    assert three["test"] == "Kruskal–Wallis" and three["p_value"] < 0.05
    assert subgroup_test({"A": [0.9], "B": [0.5]}, seed=0)["p_value"] is None


def test_min_attainable_p_matches_the_exact_permutation_count() -> None:
    # two groups of 3: 20 ways to split 6 cases, each tail holds one extreme split
    assert min_attainable_p([3, 3]) == pytest.approx(2 / 20, abs=1e-6)
    res = subgroup_test({"A": [0.9, 0.91, 0.92], "B": [0.1, 0.11, 0.12]}, seed=0)
    assert res["p_value"] == pytest.approx(res["min_p"], abs=1e-6)  # perfectly separated reaches the floor
    assert min_attainable_p([2, 2, 2]) > 0.05 and min_attainable_p([5, 5, 5]) < 0.05


def test_sites_too_small_to_test_are_inconclusive_not_conform(tmp_path: Path) -> None:
    cases = {f"c{i}": "AB"[i % 2] for i in range(4)}  # 2 + 2 cases: no split reaches p < 0.05
    ctx = context(tmp_path, data=disks(cases))
    res = run_characteristic(Generalization(), ctx, Claims(generalization=GeneralizationClaim(min_metric=0.9)))
    assert res.verdict == Verdict.INCONCLUSIVE, res.reason
    check = next(c for c in res.evidence.checks if c.name.startswith("no significant difference"))
    assert check.passed is None and "cannot detect" in check.detail and "0.333" in check.detail


def test_held_out_metric_judged_on_its_confidence_interval(tmp_path: Path) -> None:
    cases = {f"c{i}": "AB"[i % 2] for i in range(8)}
    data = disks(cases, fg={"A": 0.8, "B": 0.45}, per_case=2)  # B: disks below the threshold, missed
    ctx = context(tmp_path, data=data)
    held = run_characteristic(Generalization(), ctx, Claims(generalization=GeneralizationClaim(min_metric=0.0)))
    s = held.evidence.measurements["held_out"]
    assert s["ci_low"] < s["estimate"] < s["ci_high"]
    inside = run_characteristic(
        Generalization(),
        ctx,
        Claims(generalization=GeneralizationClaim(min_metric=round((s["ci_low"] + s["estimate"]) / 2, 4))),
    )
    check = next(c for c in inside.evidence.checks if c.name.startswith("held-out"))
    assert check.passed is None  # the point estimate clears the bar, the lower bound does not
    above = run_characteristic(
        Generalization(),
        ctx,
        Claims(generalization=GeneralizationClaim(min_metric=min(1.0, round(s["ci_high"] + 0.01, 4)))),
    )
    assert next(c for c in above.evidence.checks if c.name.startswith("held-out")).passed is False


def test_equal_sites_conform(tmp_path: Path) -> None:
    cases = {f"c{i}": "AB"[i % 2] for i in range(8)}
    ctx = context(tmp_path, data=disks(cases))
    res = run_characteristic(Generalization(), ctx, Claims(generalization=GeneralizationClaim(min_metric=0.9)))
    assert res.verdict == Verdict.CONFORM, res.reason
    assert res.evidence.measurements["held_out"]["estimate"] == 1.0
    assert (tmp_path / "evidence" / "examples.npz").is_file()


def test_a_failing_site_is_detected(tmp_path: Path) -> None:
    cases = {f"c{i}": "AB"[i % 2] for i in range(10)}
    data = disks(cases, fg={"A": 0.8, "B": 0.45}, per_case=2)
    ctx = context(tmp_path, data=data)
    res = run_characteristic(Generalization(), ctx, Claims(generalization=GeneralizationClaim(min_metric=0.4)))
    ev = res.evidence
    owners = np.asarray(data.case_ids)
    per_case = {c: dice_np(data.targets[owners == c], data.images[owners == c, 0] > 0.5) for c in data.cases}
    assert ev.measurements["held_out"]["estimate"] == pytest.approx(np.mean(list(per_case.values())), abs=1e-6)
    assert ev.measurements["subgroup_test"]["p_value"] < 0.05
    assert res.verdict == Verdict.NONCONFORM
    assert any(c.name.startswith("no significant difference between sites") and c.passed is False for c in ev.checks)
    forest = next(p for p in ev.plots if p.kind == "forest")
    assert forest.row_labels == ["A", "B"]
