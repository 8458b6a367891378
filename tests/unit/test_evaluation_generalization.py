"""000 §6.3.7 generalization: held-out metric, subgroups by site, stress samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_evaluation_support import context, dice_np, disks

from aimd.evaluation import Claims, Generalization, GeneralizationClaim, Verdict, subgroup_test
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


def test_equal_sites_conform(tmp_path: Path) -> None:
    cases = {f"c{i}": "AB"[i % 2] for i in range(8)}
    ctx = context(tmp_path, data=disks(cases))
    res = run_characteristic(Generalization(), ctx, Claims(generalization=GeneralizationClaim(min_metric=0.9)))
    assert res.verdict == Verdict.CONFORMS, res.reason
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
    assert res.verdict == Verdict.DOES_NOT_CONFORM
    assert any(c.name == "no significant difference between sites" and not c.passed for c in ev.checks)
    forest = next(p for p in ev.plots if p.kind == "forest")
    assert forest.row_labels == ["A", "B"]
