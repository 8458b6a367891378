"""Run the quality characteristics of 000 §6.2–§6.3 and capture each one's outcome.

Every clause of 000 §6.2 and §6.3.1–§6.3.9 gets a result: a characteristic that was skipped,
that aimd has no method for, or that raised an error is reported as *not evaluated* with the
reason — never silently dropped. Each result records its wall-clock time.

Example
-------
>>> [c.key for c in CLAUSES][:3]
['description', 'trainability', 'scalability']
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from aimd.core.errors import InvalidInputError
from aimd.core.logging import get_logger
from aimd.evaluation.adversarial import Adversarial
from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.description import Description
from aimd.evaluation.efficiency import Efficiency
from aimd.evaluation.egress import EgressGuard
from aimd.evaluation.evidence import CharacteristicResult, Verdict, verdict_from_checks
from aimd.evaluation.generalization import Generalization
from aimd.evaluation.privacy import Privacy
from aimd.evaluation.repeatability import Repeatability
from aimd.evaluation.robustness import Robustness
from aimd.evaluation.scalability import Scalability
from aimd.evaluation.trainability import Trainability
from aimd.evaluation.transferability import Transferability

_log = get_logger("aimd.evaluation.runner")


@dataclass(frozen=True)
class ClauseInfo:
    """One evaluated clause of 000 §6 and the requirement it checks."""

    key: str
    clause: str
    requirement: str
    title: str


CLAUSES: tuple[ClauseInfo, ...] = (
    ClauseInfo("description", "000 §6.2", "000 §4", "Model description"),
    ClauseInfo("trainability", "000 §6.3.1", "000 §5.2.1", "Trainability"),
    ClauseInfo("scalability", "000 §6.3.2", "000 §5.2.2", "Architecture scalability"),
    ClauseInfo("transferability", "000 §6.3.3", "000 §5.2.3", "Transferability"),
    ClauseInfo("efficiency", "000 §6.3.4", "000 §5.2.4", "Model efficiency"),
    ClauseInfo("repeatability", "000 §6.3.5", "000 §5.2.5", "Output repeatability"),
    ClauseInfo("robustness", "000 §6.3.6", "000 §5.2.6", "Robustness"),
    ClauseInfo("generalization", "000 §6.3.7", "000 §5.2.7", "Generalization"),
    ClauseInfo("adversarial", "000 §6.3.8", "000 §5.2.8", "Adversarial security"),
    ClauseInfo("privacy", "000 §6.3.9", "000 §5.2.9", "Privacy protection"),
)
CLAUSE_KEYS = tuple(c.key for c in CLAUSES)

CHARACTERISTICS: dict[str, Characteristic] = {
    c.key: c for c in (Description(), Trainability(), Scalability(), Transferability(), Efficiency(), Repeatability(),
                       Robustness(), Generalization(), Adversarial(), Privacy())
}


def check_selection(names: Iterable[str], *, where: str) -> list[str]:
    """Validate ``--only`` / ``--skip`` names against :data:`CLAUSE_KEYS`.

    Example
    -------
    >>> check_selection(["efficiency"], where="--only")
    ['efficiency']
    """
    out = [n.strip() for n in names if n.strip()]
    unknown = [n for n in out if n not in CLAUSE_KEYS]
    if unknown:
        raise InvalidInputError(f"unknown characteristic(s) {unknown}", where=where,
                                hint=f"choose from {', '.join(CLAUSE_KEYS)}")
    return out


def _not_evaluated(info: ClauseInfo, reason: str, error: str | None = None) -> CharacteristicResult:
    return CharacteristicResult(key=info.key, clause=info.clause, title=info.title, verdict=Verdict.NOT_EVALUATED,
                                reason=reason, error=error)


def run_characteristic(char: Characteristic, ctx: EvaluationContext, claims: Claims) -> CharacteristicResult:
    """Measure and judge one characteristic; an exception becomes *not evaluated* with the error."""
    claim = char.claim_of(claims)
    settings = claim if claim is not None else char.default_claim()
    started = time.perf_counter()
    threads = torch.get_num_threads()
    try:
        evidence = char.measure(ctx, settings, claims)
    except Exception as err:  # every failure is reported as not evaluated, never dropped
        _log.warning("evaluation.failed", characteristic=char.key, error=repr(err),
                     traceback=traceback.format_exc(limit=8))
        result = CharacteristicResult(
            key=char.key, clause=char.clause, title=char.title, verdict=Verdict.NOT_EVALUATED,
            reason=f"the evaluation failed: {type(err).__name__}: {err}", error=traceback.format_exc(limit=8),
            claim=None if claim is None else claim.model_dump(mode="json"), method=char.method)
        result.seconds = round(time.perf_counter() - started, 3)
        return result
    finally:
        torch.set_num_threads(threads)
    verdict, reason = verdict_from_checks(evidence)
    if claim is None:
        verdict = Verdict.NOT_EVALUATED
        reason = (f"the provider made no claim for {char.requirement}; measured with aimd's default settings "
                  "(checks shown against those defaults)")
    return CharacteristicResult(key=char.key, clause=char.clause, title=char.title, verdict=verdict, reason=reason,
                                claim=settings.model_dump(mode="json"), method=char.method, evidence=evidence,
                                seconds=round(time.perf_counter() - started, 3))


def run_characteristics(ctx: EvaluationContext, claims: Claims, *, only: Iterable[str] = (),
                        skip: Iterable[str] = (), progress: Callable[[str], object] | None = None,
                        registry: dict[str, Characteristic] | None = None) -> list[CharacteristicResult]:
    """One result per clause of :data:`CLAUSES`, in clause order.

    Parameters
    ----------
    ctx, claims:
        What to evaluate and what the provider claims.
    only, skip:
        Characteristic keys to restrict to / leave out (reported as not evaluated with the reason).
    progress:
        Called with each key before it runs.
    registry:
        Characteristics by key (default :data:`CHARACTERISTICS`).
    """
    chosen = set(check_selection(only, where="--only"))
    skipped = set(check_selection(skip, where="--skip"))
    table = CHARACTERISTICS if registry is None else registry
    results: list[CharacteristicResult] = []
    guard = EgressGuard()
    ctx.extra["egress_attempts"] = guard.attempts  # read by 000 §6.3.9 (5.2.9 b)
    with guard:
        _run_all(ctx, claims, chosen, skipped, table, results, progress)
    return results


def _run_all(ctx: EvaluationContext, claims: Claims, chosen: set[str], skipped: set[str],
             table: dict[str, Characteristic], results: list[CharacteristicResult],
             progress: Callable[[str], object] | None) -> None:
    for info in CLAUSES:
        if info.key in skipped:
            results.append(_not_evaluated(info, "skipped on request (--skip)"))
            continue
        if chosen and info.key not in chosen:
            why = ctx.extra.get("not_applicable", {}).get(info.key, "not selected (--only)")
            results.append(_not_evaluated(info, why))
            continue
        char = table.get(info.key)
        if char is None:
            results.append(_not_evaluated(info, f"aimd has no evaluation method for {info.clause} yet"))
            continue
        if progress is not None:
            progress(info.key)
        results.append(run_characteristic(char, ctx, claims))


__all__ = ["CHARACTERISTICS", "CLAUSES", "CLAUSE_KEYS", "ClauseInfo", "check_selection", "run_characteristic",
           "run_characteristics"]
