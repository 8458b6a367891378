"""Weighted scoring per area and the conclusion (002 §6.1, §6.1.3; App. C.1 conclusion).

An area's score is the share of its evaluated checks that pass; areas with nothing evaluated carry
no score and make the conclusion ``incomplete`` rather than ``pass``. A failed check in a critical
area, or a weighted score below the pass mark, makes it ``fail``.

Example
-------
>>> from aimd.iq.checks.base import CheckResult, Verdict
>>> from aimd.iq.protocol import Scoring
>>> rs = [CheckResult(key="a", area="versions", clause="c", title="t", verdict=Verdict.PASS, expected="", observed="")]
>>> score(rs, Scoring(weights={"versions": 1}, pass_score=80))["conclusion"]
'pass'
"""

from __future__ import annotations

from typing import Any

from aimd.iq.checks.base import CheckResult, Verdict
from aimd.iq.protocol import AREAS, Scoring


def score(results: list[CheckResult], scoring: Scoring) -> dict[str, Any]:
    """Per-area counts and scores, the weighted total and the conclusion."""
    areas = {}
    for area in AREAS:
        mine = [r for r in results if r.area == area]
        passed = sum(r.verdict is Verdict.PASS for r in mine)
        failed = sum(r.verdict is Verdict.FAIL for r in mine)
        evaluated = passed + failed
        areas[area] = {
            "weight": scoring.weights.get(area, 0.0),
            "checks": len(mine),
            "passed": passed,
            "failed": failed,
            "not_evaluated": len(mine) - evaluated,
            "score": round(100.0 * passed / evaluated, 1) if evaluated else None,
        }
    weighted = [(a["weight"], a["score"]) for a in areas.values() if a["weight"] > 0 and a["score"] is not None]
    total = round(sum(w * s for w, s in weighted) / sum(w for w, _ in weighted), 1) if weighted else None
    missing = [name for name, a in areas.items() if a["weight"] > 0 and a["score"] is None]
    critical_failures = [
        r.key
        for r in results
        if r.verdict is Verdict.FAIL and (r.area in scoring.critical_areas or (r.deviation and r.deviation.critical))
    ]
    if critical_failures or (total is not None and total < scoring.pass_score):
        conclusion = "fail"
    elif missing or total is None:
        conclusion = "incomplete"
    else:
        conclusion = "pass"
    reasons = []
    if critical_failures:
        reasons.append("critical checks failed: " + ", ".join(critical_failures))
    if total is not None and total < scoring.pass_score:
        reasons.append(f"weighted score {total} < {scoring.pass_score}")
    if missing:
        reasons.append("areas not evaluated: " + ", ".join(missing))
    return {
        "areas": areas,
        "total": total,
        "pass_score": scoring.pass_score,
        "conclusion": conclusion,
        "reasons": reasons or [f"weighted score {total} ≥ {scoring.pass_score}, no critical failure"],
    }


__all__ = ["score"]
