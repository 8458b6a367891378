"""Evidence, verdicts and per-characteristic results of a conformity evaluation (000 §6).

Every verdict aimd writes is backed by :class:`Evidence`: the measurements, the tables and the
plot data a reader needs to check it. Plots are stored as data (:class:`Plot`) and drawn by
:mod:`aimd.reports`, so the JSON report carries the same numbers the figures show.

Example
-------
>>> ev = Evidence(measurements={"p95_ms": 3.1})
>>> r = CharacteristicResult(key="efficiency", clause="000 §6.3.4", title="Model efficiency",
...                          verdict=Verdict.CONFORM, reason="p95 3.1 ms ≤ 10 ms", evidence=ev)
>>> r.verdict.value
'conform'
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Verdict(StrEnum):
    """Outcome of one characteristic against the provider's claim (000 §6.1).

    ``conform``: every claimed quantity that could be compared was met; ``nonconform``: at least
    one was not; ``inconclusive``: none failed but at least one test could not decide (a confidence
    interval straddles the claimed limit, or the group sizes cannot reach the significance level);
    ``not_evaluated``: nothing claimed could be compared with a measurement — the reason says why.
    """

    CONFORM = "conform"
    NONCONFORM = "nonconform"
    INCONCLUSIVE = "inconclusive"
    NOT_EVALUATED = "not_evaluated"


class Outcome(StrEnum):
    """Outcome of one claimed quantity compared with its measurement."""

    MET = "met"
    NOT_MET = "not_met"
    INCONCLUSIVE = "inconclusive"
    NOT_EVALUATED = "not_evaluated"


class Series(BaseModel):
    """One line of a plot; ``low``/``high`` give a confidence band when known."""

    model_config = ConfigDict(extra="forbid")

    name: str
    x: list[float]
    y: list[float | None]
    low: list[float | None] | None = None
    high: list[float | None] | None = None


class Plot(BaseModel):
    """Plot data: ``line`` (curves), ``forest`` (estimate + CI per row, x = row index), ``overlay``
    (example slices from an ``.npz`` file holding ``image``, ``truth``, ``pred``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["line", "forest", "overlay"]
    title: str
    x_label: str = ""
    y_label: str = ""
    series: list[Series] = Field(default_factory=list)
    row_labels: list[str] = Field(default_factory=list)
    reference: float | None = None
    log_x: bool = False
    data_file: str | None = None


class Table(BaseModel):
    """A titled table of rows (each a dict of column → value)."""

    model_config = ConfigDict(extra="forbid")

    title: str
    columns: list[str]
    rows: list[dict[str, Any]]


class Check(BaseModel):
    """One claimed quantity compared with its measurement (``passed`` is ``None`` unless decided)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    claimed: Any
    measured: Any
    outcome: Outcome
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        """``True`` met, ``False`` not met, ``None`` inconclusive or not evaluated."""
        return {Outcome.MET: True, Outcome.NOT_MET: False}.get(self.outcome)


class Evidence(BaseModel):
    """What was measured for one characteristic."""

    model_config = ConfigDict(extra="forbid")

    measurements: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    plots: list[Plot] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)
    summary: str = Field(
        "", description="one line the verdict's reason ends with (e.g. the configuration that met the claim)"
    )

    def check(self, name: str, claimed: Any, measured: Any, passed: bool | None, detail: str = "") -> bool:
        """Record a claim-vs-measurement comparison (``passed=None``: inconclusive) and return ``passed is True``.

        Example
        -------
        >>> Evidence().check("p95 ms", 10, 3.0, 3.0 <= 10)
        True
        """
        outcome = Outcome.INCONCLUSIVE if passed is None else Outcome.MET if passed else Outcome.NOT_MET
        self.checks.append(Check(name=name, claimed=claimed, measured=measured, outcome=outcome, detail=detail))
        return passed is True

    def at_least(self, name: str, limit: float, summary: dict[str, Any], detail: str = "") -> bool:
        """Judge ``estimate ≥ limit`` on the 95 % CI: met when the lower bound reaches ``limit``, not met
        when the upper bound stays below it, inconclusive when the CI straddles it.

        Without a CI (fewer than two cases) the point estimate decides and the detail says so.

        Example
        -------
        >>> ev = Evidence()
        >>> ev.at_least("Dice", 0.7, {"estimate": 0.75, "ci_low": 0.65, "ci_high": 0.8})
        False
        >>> ev.checks[0].outcome.value
        'inconclusive'
        """
        return self._bounded(
            name, f"≥ {limit}", summary, detail, lambda lo, hi: True if lo >= limit else False if hi < limit else None
        )

    def at_most(self, name: str, limit: float, summary: dict[str, Any], detail: str = "") -> bool:
        """Judge ``estimate ≤ limit`` on the 95 % CI (upper bound within: met; lower bound above: not met).

        Example
        -------
        >>> Evidence().at_most("drop", 0.05, {"estimate": 0.01, "ci_low": -0.01, "ci_high": 0.03})
        True
        """
        return self._bounded(
            name, f"≤ {limit}", summary, detail, lambda lo, hi: True if hi <= limit else False if lo > limit else None
        )

    def _bounded(self, name: str, claimed: str, summary: dict[str, Any], detail: str, rule: Any) -> bool:
        est, lo, hi = summary["estimate"], summary.get("ci_low"), summary.get("ci_high")
        if lo is None or hi is None:
            note = "single case: no confidence interval, the point estimate decides"
            return self.check(name, claimed, est, rule(est, est), f"{detail}; {note}" if detail else note)
        ci = f"95 % CI [{_fmt(lo)}, {_fmt(hi)}]"
        return self.check(name, claimed, est, rule(lo, hi), f"{ci}; {detail}" if detail else ci)

    def not_evaluated(self, name: str, claimed: Any, reason: str) -> None:
        """Record a claimed quantity that nothing could be compared with, and why.

        Example
        -------
        >>> ev = Evidence(); ev.not_evaluated("runtime deviation", 1e-3, "no torch module")
        >>> ev.checks[0].outcome.value
        'not_evaluated'
        """
        self.checks.append(
            Check(name=name, claimed=claimed, measured=None, outcome=Outcome.NOT_EVALUATED, detail=reason)
        )


class CharacteristicResult(BaseModel):
    """Claim, method, evidence and verdict of one clause (one report section)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    clause: str
    title: str
    verdict: Verdict
    reason: str
    claim: dict[str, Any] | None = None
    method: str = ""
    evidence: Evidence = Field(default_factory=Evidence)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    error: str | None = None


def verdict_from_checks(evidence: Evidence) -> tuple[Verdict, str]:
    """The verdict of a characteristic from its checks, with a reason naming the deciding checks.

    ``nonconform`` when any check is not met; else ``inconclusive`` when any could not decide; else
    ``conform`` when at least one was met (the reason lists those not evaluated); ``not evaluated``
    when nothing could be compared.

    Example
    -------
    >>> ev = Evidence(); _ = ev.check("a", 1, 2, False)
    >>> verdict_from_checks(ev)[0].value
    'nonconform'
    >>> ev = Evidence(); ev.not_evaluated("a", 1, "no budget at or below the claimed one")
    >>> verdict_from_checks(ev)
    (<Verdict.NOT_EVALUATED: 'not_evaluated'>, 'a: not evaluated (no budget at or below the claimed one)')
    """
    by: dict[Outcome, list[Check]] = {o: [c for c in evidence.checks if c.outcome == o] for o in Outcome}
    skipped = "; ".join(f"{c.name}: not evaluated ({c.detail})" for c in by[Outcome.NOT_EVALUATED])
    tail = f"; {skipped}" if skipped else ""
    if by[Outcome.NOT_MET]:
        return Verdict.NONCONFORM, "; ".join(
            f"{c.name}: measured {_fmt(c.measured)} vs claimed {_fmt(c.claimed)}" for c in by[Outcome.NOT_MET]
        )
    if by[Outcome.INCONCLUSIVE]:
        return Verdict.INCONCLUSIVE, "; ".join(
            f"{c.name}: undecided, measured {_fmt(c.measured)} vs claimed {_fmt(c.claimed)}"
            + (f" ({c.detail})" if c.detail else "")
            for c in by[Outcome.INCONCLUSIVE]
        ) + tail
    if by[Outcome.MET]:
        return Verdict.CONFORM, f"all {len(by[Outcome.MET])} compared claimed quantities met{tail}"
    if skipped:
        return Verdict.NOT_EVALUATED, skipped
    return Verdict.NOT_EVALUATED, "the claim sets no limit that a measurement could be compared with"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


__all__ = [
    "CharacteristicResult",
    "Check",
    "Evidence",
    "Outcome",
    "Plot",
    "Series",
    "Table",
    "Verdict",
    "verdict_from_checks",
]
