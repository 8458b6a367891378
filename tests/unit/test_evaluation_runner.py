"""Runner: every clause reported; failures, skips and missing claims become not evaluated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_evaluation_support import context

from aimd.core.errors import InvalidInputError
from aimd.evaluation import (
    CLAUSE_KEYS,
    REGISTRY,
    Characteristic,
    Claims,
    EfficiencyClaim,
    Evidence,
    Verdict,
    claims_template,
)
from aimd.evaluation.characteristics.efficiency import Efficiency
from aimd.evaluation.runner import run_characteristics


class _Broken(Characteristic):
    key = "repeatability"
    clause = "000 §6.3.5"
    requirement = "000 §5.2.5"
    title = "Output repeatability"
    method = "divides by zero"
    claim_model = EfficiencyClaim

    def run(self, ctx: Any, claim: Any) -> Evidence:
        return Evidence(measurements={"x": 1 / 0})


def test_every_clause_reported_with_reasons(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    claims = Claims(efficiency=EfficiencyClaim(runs=3, int8=False, max_parameters=5))
    registry = {"efficiency": Efficiency(), "repeatability": _Broken()}
    results = run_characteristics(ctx, claims, skip=["description"], registry=registry)
    assert [r.key for r in results] == list(CLAUSE_KEYS)
    by = {r.key: r for r in results}
    assert by["efficiency"].verdict == Verdict.CONFORM
    assert by["repeatability"].verdict == Verdict.NOT_EVALUATED
    assert "ZeroDivisionError" in by["repeatability"].reason and by["repeatability"].error
    assert by["description"].reason.startswith("skipped")
    assert "no evaluation method" in by["privacy"].reason


def test_no_claim_is_measured_but_not_judged(tmp_path: Path) -> None:
    results = run_characteristics(
        context(tmp_path), Claims(), only=["efficiency"], registry={"efficiency": Efficiency()}
    )
    eff = next(r for r in results if r.key == "efficiency")
    assert eff.verdict == Verdict.NOT_EVALUATED and "no claim" in eff.reason
    assert eff.evidence.measurements["parameters"] == 2
    assert all(r.reason == "not selected (--only)" for r in results if r.key != "efficiency")


def test_a_clause_that_does_not_apply_says_why(tmp_path: Path) -> None:
    results = run_characteristics(context(tmp_path), Claims(), only=["trainability", "efficiency"])
    by = {r.key: r for r in results}
    assert by["trainability"].verdict == Verdict.NOT_EVALUATED
    assert by["trainability"].reason.startswith("not applicable: needs the model as an aimd training run")
    assert by["privacy"].reason == "not selected (--only)"


def test_registry_finds_every_characteristic_once_in_clause_order() -> None:
    assert [c.key for c in REGISTRY] == list(CLAUSE_KEYS)
    assert [c.clause for c in REGISTRY] == ["000 §6.2", *[f"000 §6.3.{i}" for i in range(1, 10)]]
    sections = [k for k in Claims.model_fields if k in CLAUSE_KEYS]
    assert sections == list(CLAUSE_KEYS)  # the claims document is built from the registry
    template = claims_template()
    assert all(f"\n{k}:\n" in template for k in CLAUSE_KEYS)
    for char in REGISTRY:  # one module per characteristic, none importing another (import-linter contract)
        assert char.__module__ == f"aimd.evaluation.characteristics.{char.key}"


def test_every_verdict_reports_why_nothing_was_compared(tmp_path: Path) -> None:
    res = run_characteristics(
        context(tmp_path), Claims(efficiency=EfficiencyClaim(runs=3, int8=False)), only=["efficiency"]
    )
    eff = next(r for r in res if r.key == "efficiency")
    assert eff.verdict == Verdict.NOT_EVALUATED and "sets no limit" in eff.reason


def test_unknown_selection_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        run_characteristics(context(tmp_path), Claims(), only=["speed"])


class _Timed(Characteristic):
    """Sleeps (wall time, no CPU) or computes in a subprocess it waits for (CPU of a child)."""

    key = "efficiency"
    clause = "000 §6.3.4"
    requirement = "000 §5.2.4"
    title = "Model efficiency"
    method = "sleeps, then works in a child process"
    claim_model = EfficiencyClaim

    def __init__(self, work: bool) -> None:
        self.work = work

    def run(self, ctx: Any, claim: Any) -> Evidence:
        import subprocess
        import sys
        import time

        if self.work:
            subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
        else:
            time.sleep(0.5)
        return Evidence(measurements={"done": True})


def test_each_result_records_cpu_seconds_apart_from_wall_time(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    runs = {}
    for work in (False, True):
        results = run_characteristics(ctx, Claims(), only=["efficiency"], registry={"efficiency": _Timed(work)})
        runs[work] = next(r for r in results if r.key == "efficiency")
    idle, busy = runs[False], runs[True]
    assert idle.seconds >= 0.5 and idle.cpu_seconds < 0.25  # waiting costs wall time, not CPU
    assert busy.cpu_seconds >= 0.1  # the waited-for child's CPU counts
