"""The IQ check abstraction: :class:`IQCheck` runs against an :class:`IQContext` and returns a :class:`CheckResult`.

A check has a key, an area of 002 §6 (resources, function, security, reliability, performance, logs,
versions), the clauses it executes, and a verdict that is ``pass``, ``fail`` or ``not_evaluated`` —
a check with nothing to compare (no target, no prefix, no baseline cases) never passes. A failing
check carries a deviation with its impact and corrective action (002 §4.1.2 g).

Example
-------
>>> r = CheckResult(key="k", area="versions", clause="002 §6.6.1 d", title="t", verdict=Verdict.PASS,
...                 expected="x", observed="x")
>>> r.verdict.value
'pass'
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aimd.core.atomic import atomic_write_json
from aimd.iq.install import Layout
from aimd.iq.protocol import IQProtocol


def listed(label: str, items: list[str], otherwise: str, sep: str = ", ") -> str:
    """``"label: a, b"`` for the items found, ``otherwise`` when there are none.

    Example
    -------
    >>> listed("open", ["GET /a"], "all refused"), listed("open", [], "all refused")
    ('open: GET /a', 'all refused')
    """
    return f"{label}: {sep.join(items)}" if items else otherwise


class Verdict(StrEnum):
    """Outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    NOT_EVALUATED = "not_evaluated"


class Deviation(BaseModel):
    """A problem found, its impact and the corrective action (002 §4.1.2 g)."""

    model_config = ConfigDict(extra="forbid")

    check: str
    description: str
    impact: str
    corrective_action: str
    critical: bool = False


class CheckResult(BaseModel):
    """What one check expected, observed and concluded, with its evidence files."""

    model_config = ConfigDict(extra="forbid")

    key: str
    area: str
    clause: str
    title: str
    verdict: Verdict
    expected: str
    observed: str
    reason: str = ""
    seconds: float = 0.0
    evidence: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    deviation: Deviation | None = None


@dataclass
class IQContext:
    """What a run qualifies: a protocol, an installation prefix and/or a running target, and an output folder."""

    protocol: IQProtocol
    out: Path
    prefix: Layout | None = None
    target: str | None = None
    profile: str = "quick"
    token: str | None = None
    platform: str | None = None
    platform_admin: dict[str, Any] | None = None
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence_dir(self) -> Path:
        path = self.out / "evidence"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write_evidence(self, name: str, obj: Any) -> str:
        """Write ``obj`` as JSON to ``evidence/<name>.json``; returns the path relative to the report."""
        path = self.evidence_dir / f"{name}.json"
        atomic_write_json(path, json.loads(json.dumps(obj, default=str)))
        return path.relative_to(self.out).as_posix()

    def scratch(self, name: str) -> Path:
        """A fresh folder for drills under the output folder."""
        path = self.out / "scratch" / name
        path.mkdir(parents=True, exist_ok=True)
        return path


class IQCheck(ABC):
    """One executable check of the IQ protocol."""

    key: str
    area: str
    clause: str
    title: str
    impact: str = "the installation may not meet the protocol"
    fix: str = "correct the cause and re-run the check"
    critical: bool = False

    def result(
        self,
        verdict: Verdict,
        expected: str,
        observed: str,
        *,
        reason: str = "",
        evidence: list[str] | None = None,
        data: dict[str, Any] | None = None,
    ) -> CheckResult:
        """Build this check's result; a failure carries the deviation."""
        deviation = None
        if verdict is Verdict.FAIL:
            deviation = Deviation(
                check=self.key,
                description=reason or observed,
                impact=self.impact,
                corrective_action=self.fix,
                critical=self.critical,
            )
        return CheckResult(
            key=self.key,
            area=self.area,
            clause=self.clause,
            title=self.title,
            verdict=verdict,
            expected=expected,
            observed=observed,
            reason=reason,
            evidence=evidence or [],
            data=data or {},
            deviation=deviation,
        )

    def not_evaluated(self, why: str) -> CheckResult:
        """Nothing to compare: never a pass."""
        return self.result(Verdict.NOT_EVALUATED, "—", "—", reason=why)

    def judge(self, ok: bool, expected: str, observed: str, **kwargs: Any) -> CheckResult:
        """Pass when ``ok``, fail otherwise."""
        return self.result(Verdict.PASS if ok else Verdict.FAIL, expected, observed, **kwargs)

    def tally(
        self,
        ctx: IQContext,
        rows: list[dict[str, Any]],
        bad: list[str],
        *,
        expected: str,
        counted: str,
        found: tuple[str, str],
        evidence: str,
        data_key: str | None = None,
        sep: str = ", ",
        extra_evidence: list[str] | None = None,
    ) -> CheckResult:
        """Pass when no row is bad: observed ``"<good> of <all> <counted>"``, the bad ones named after
        ``found[0]`` (``found[1]`` when none), the rows written as evidence (and kept under ``data_key``)."""
        return self.judge(
            not bad,
            expected,
            f"{len(rows) - len(bad)} of {len(rows)} {counted}",
            reason=listed(found[0], bad, found[1], sep=sep),
            evidence=[ctx.write_evidence(evidence, rows), *(extra_evidence or [])],
            data={data_key: rows} if data_key else None,
        )

    @abstractmethod
    def run(self, ctx: IQContext) -> CheckResult:
        """Execute the check."""

    def execute(self, ctx: IQContext) -> CheckResult:
        """Run with timing; an unexpected error is a failure naming it, never a silent pass."""
        start = time.perf_counter()
        try:
            res = self.run(ctx)
        except Exception as err:
            res = self.result(
                Verdict.FAIL,
                "the check runs",
                f"{type(err).__name__}: {err}",
                reason=f"check raised {type(err).__name__}: {err}",
            )
        res.seconds = round(time.perf_counter() - start, 3)
        return res


__all__ = ["CheckResult", "Deviation", "IQCheck", "IQContext", "Verdict", "listed"]
