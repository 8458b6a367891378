"""The metric drop under a perturbation or an attack, and its judgement against a claimed limit.

Robustness (A.12.2 a, artefact severities) and adversarial robustness (A.12.3, attack budgets) both
measure the A.10 metric at increasing levels, pair it with the clean metric over the same cases,
and judge the worst drop at or below the claimed level on its 95 % CI's upper bound; with no level
measured at or below the claimed one the claim is *not evaluated*, never met.

Example
-------
>>> ev = Evidence()
>>> rows = [{"level": 0.5, **drop_fields("dice", {"estimate": 0.8, "ci_low": 0.7, "ci_high": 0.9},
...                                      {"estimate": 0.02, "ci_low": 0.01, "ci_high": 0.03})}]
>>> judge_worst_drop(ev, "drop", rows, level="level", claimed=1.0, limit=0.05, detail=str, missing="none")
>>> judge_worst_drop(ev, "drop", rows, level="level", claimed=0.1, limit=0.05, detail=str, missing="none")
>>> [c.outcome.value for c in ev.checks]
['met', 'not_evaluated']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aimd.evaluation.evidence import Evidence, Series


class Curve:
    """The metric with its CI at the clean level and at each measured level: one series of a plot."""

    def __init__(self, clean: dict[str, Any]) -> None:
        self.y, self.low, self.high = [clean["estimate"]], [clean["ci_low"]], [clean["ci_high"]]

    def add(self, summary: dict[str, Any]) -> None:
        """Append the metric summary (``estimate``, ``ci_low``, ``ci_high``) of the next level."""
        self.y.append(summary["estimate"])
        self.low.append(summary["ci_low"])
        self.high.append(summary["ci_high"])

    def series(self, name: str, levels: list[float]) -> Series:
        """The plot series over ``[0, *levels]``."""
        return Series(name=name, x=[0.0, *levels], y=self.y, low=self.low, high=self.high)


def drop_fields(name: str, summary: dict[str, Any], drop: dict[str, Any]) -> dict[str, Any]:
    """A table row's metric ``name`` with its CI, and the paired drop (clean minus degraded) with its CI."""
    return {
        name: summary["estimate"],
        "ci_low": summary["ci_low"],
        "ci_high": summary["ci_high"],
        "drop": drop["estimate"],
        "drop_ci_low": drop["ci_low"],
        "drop_ci_high": drop["ci_high"],
    }


def judge_worst_drop(
    ev: Evidence,
    label: str,
    rows: list[dict[str, Any]],
    *,
    level: str,
    claimed: float,
    limit: float,
    detail: Callable[[dict[str, Any]], str],
    missing: str,
) -> None:
    """Judge the largest drop among ``rows`` with ``row[level] ≤ claimed`` against ``limit``, or say why not."""
    within = [r for r in rows if r[level] <= claimed]
    if not within:
        ev.not_evaluated(label, f"≤ {limit}", missing)
        return
    worst = max(within, key=lambda r: r["drop"])
    ci = {"estimate": worst["drop"], "ci_low": worst["drop_ci_low"], "ci_high": worst["drop_ci_high"]}
    ev.at_most(label, limit, ci, detail(worst))


__all__ = ["Curve", "drop_fields", "judge_worst_drop"]
