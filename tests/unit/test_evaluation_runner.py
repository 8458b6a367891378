"""Runner: every clause reported; failures, skips and missing claims become not evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_evaluation_support import context

from aimd.core.errors import InvalidInputError
from aimd.evaluation import CLAUSE_KEYS, Characteristic, Claims, EfficiencyClaim, Evidence, Verdict
from aimd.evaluation.efficiency import Efficiency
from aimd.evaluation.runner import run_characteristics


class _Broken(Characteristic):
    key = "repeatability"
    clause = "000 §6.3.5"
    requirement = "000 §5.2.5"
    title = "Output repeatability"
    method = "divides by zero"
    claim_model = EfficiencyClaim

    def measure(self, ctx: Any, claim: Any, claims: Claims) -> Evidence:
        return Evidence(measurements={"x": 1 / 0})


def test_every_clause_reported_with_reasons(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    claims = Claims(efficiency=EfficiencyClaim(runs=3, int8=False, max_parameters=5))
    registry = {"efficiency": Efficiency(), "repeatability": _Broken()}
    results = run_characteristics(ctx, claims, skip=["description"], registry=registry)
    assert [r.key for r in results] == list(CLAUSE_KEYS)
    by = {r.key: r for r in results}
    assert by["efficiency"].verdict == Verdict.CONFORMS
    assert by["repeatability"].verdict == Verdict.NOT_EVALUATED
    assert "ZeroDivisionError" in by["repeatability"].reason and by["repeatability"].error
    assert by["description"].reason.startswith("skipped")
    assert "no evaluation method" in by["privacy"].reason


def test_no_claim_is_measured_but_not_judged(tmp_path: Path) -> None:
    results = run_characteristics(context(tmp_path), Claims(), only=["efficiency"],
                                  registry={"efficiency": Efficiency()})
    eff = next(r for r in results if r.key == "efficiency")
    assert eff.verdict == Verdict.NOT_EVALUATED and "no claim" in eff.reason
    assert eff.evidence.measurements["parameters"] == 2
    assert all(r.reason == "not selected (--only)" for r in results if r.key != "efficiency")


def test_context_can_say_why_a_clause_does_not_apply(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.extra["not_applicable"] = {"trainability": "needs the training run"}
    results = run_characteristics(ctx, Claims(), only=["efficiency"], registry={"efficiency": Efficiency()})
    by = {r.key: r for r in results}
    assert by["trainability"].reason == "needs the training run"
    assert by["privacy"].reason == "not selected (--only)"


def test_unknown_selection_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        run_characteristics(context(tmp_path), Claims(), only=["speed"])
