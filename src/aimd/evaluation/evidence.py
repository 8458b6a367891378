"""Evidence, verdicts and per-characteristic results of a conformity evaluation (000 §6).

Every verdict aimd writes is backed by :class:`Evidence`: the measurements, the tables and the
plot data a reader needs to check it. Plots are stored as data (:class:`Plot`) and drawn by
:mod:`aimd.reports`, so the JSON report carries the same numbers the figures show.

Example
-------
>>> ev = Evidence(measurements={"p95_ms": 3.1})
>>> r = CharacteristicResult(key="efficiency", clause="000 §6.3.4", title="Model efficiency",
...                          verdict=Verdict.CONFORMS, reason="p95 3.1 ms ≤ 10 ms", evidence=ev)
>>> r.verdict.value
'conforms'
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Verdict(StrEnum):
    """Outcome of one characteristic against the provider's claim (000 §6.1)."""

    CONFORMS = "conforms"
    DOES_NOT_CONFORM = "does_not_conform"
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
    """One claimed quantity compared with its measurement."""

    model_config = ConfigDict(extra="forbid")

    name: str
    claimed: Any
    measured: Any
    passed: bool
    detail: str = ""


class Evidence(BaseModel):
    """What was measured for one characteristic."""

    model_config = ConfigDict(extra="forbid")

    measurements: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)
    plots: list[Plot] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    seeds: dict[str, int] = Field(default_factory=dict)

    def check(self, name: str, claimed: Any, measured: Any, passed: bool, detail: str = "") -> bool:
        """Record a claim-vs-measurement comparison and return ``passed``.

        Example
        -------
        >>> Evidence().check("p95 ms", 10, 3.0, 3.0 <= 10)
        True
        """
        self.checks.append(Check(name=name, claimed=claimed, measured=measured, passed=bool(passed),
                                 detail=detail))
        return bool(passed)


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
    error: str | None = None


def verdict_from_checks(evidence: Evidence) -> tuple[Verdict, str]:
    """``conforms`` when every check passed, else ``does not conform`` naming the failed checks.

    Example
    -------
    >>> ev = Evidence(); _ = ev.check("a", 1, 2, False)
    >>> verdict_from_checks(ev)[0].value
    'does_not_conform'
    """
    if not evidence.checks:
        return Verdict.NOT_EVALUATED, "no claimed quantity could be compared with a measurement"
    failed = [c for c in evidence.checks if not c.passed]
    if failed:
        return Verdict.DOES_NOT_CONFORM, "; ".join(
            f"{c.name}: measured {_fmt(c.measured)} vs claimed {_fmt(c.claimed)}" for c in failed)
    return Verdict.CONFORMS, f"all {len(evidence.checks)} claimed quantities met"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


__all__ = ["CharacteristicResult", "Check", "Evidence", "Plot", "Series", "Table", "Verdict",
           "verdict_from_checks"]
