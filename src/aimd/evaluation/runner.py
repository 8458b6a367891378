"""Run the quality characteristics of 000 §6.2–§6.3 and capture each one's outcome.

Every registered clause gets a result: a characteristic that was skipped, that does not apply to
the model (:class:`~aimd.evaluation.base.Applicability`), that aimd has no method for in the given
table, or that raised an error is reported as *not evaluated* with the reason — never silently
dropped. A network-egress guard is active throughout (000 §5.2.9 b). Each result records its
wall-clock time and its CPU seconds (user + system of this process's threads and of the
subprocesses it waited for — the figure other load on the machine does not stretch).

Example
-------
>>> check_selection(["efficiency"], where="--only")
['efficiency']
"""

from __future__ import annotations

import resource
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

import torch

from aimd.core.errors import InvalidInputError
from aimd.core.logging import get_logger
from aimd.evaluation.base import Characteristic
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import CharacteristicResult, Verdict, verdict_from_checks
from aimd.evaluation.registry import CHARACTERISTICS, CLAUSE_KEYS, CLAUSES, ClauseInfo
from aimd.evaluation.support.egress import EgressGuard, egress_scope

_log = get_logger("aimd.evaluation.runner")


def check_selection(names: Iterable[str], *, where: str) -> list[str]:
    """Validate ``--only`` / ``--skip`` names against :data:`~aimd.evaluation.registry.CLAUSE_KEYS`."""
    out = [n.strip() for n in names if n.strip()]
    unknown = [n for n in out if n not in CLAUSE_KEYS]
    if unknown:
        raise InvalidInputError(
            f"unknown characteristic(s) {unknown}", where=where, hint=f"choose from {', '.join(CLAUSE_KEYS)}"
        )
    return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its waited-for subprocesses so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _not_evaluated(info: ClauseInfo | Characteristic, reason: str) -> CharacteristicResult:
    return CharacteristicResult(
        key=info.key, clause=info.clause, title=info.title, verdict=Verdict.NOT_EVALUATED, reason=reason
    )


def run_characteristic(char: Characteristic, ctx: EvaluationContext, claims: Any) -> CharacteristicResult:
    """Measure and judge one characteristic; an exception becomes *not evaluated* with the error."""
    claim = getattr(claims, char.key, None)
    settings = claim if claim is not None else char.default_claim()
    ctx.bootstrap_resamples = int(getattr(claims, "bootstrap_resamples", ctx.bootstrap_resamples))
    why_not = char.why_not(ctx)
    if why_not is not None:
        return _not_evaluated(char, f"not applicable: {why_not}")
    started, cpu_started = time.perf_counter(), cpu_seconds()
    threads = torch.get_num_threads()
    try:
        evidence = char.run(ctx, settings)
    except Exception as err:  # every failure is reported as not evaluated, never dropped
        _log.warning(
            "evaluation.failed", characteristic=char.key, error=repr(err), traceback=traceback.format_exc(limit=8)
        )
        result = CharacteristicResult(
            key=char.key,
            clause=char.clause,
            title=char.title,
            verdict=Verdict.NOT_EVALUATED,
            reason=f"the evaluation failed: {type(err).__name__}: {err}",
            error=traceback.format_exc(limit=8),
            claim=None if claim is None else claim.model_dump(mode="json"),
            method=char.method,
        )
        result.seconds = round(time.perf_counter() - started, 3)
        result.cpu_seconds = round(cpu_seconds() - cpu_started, 3)
        return result
    finally:
        torch.set_num_threads(threads)
    verdict, reason = verdict_from_checks(evidence)
    if evidence.summary and verdict != Verdict.NOT_EVALUATED:
        reason = f"{reason} — {evidence.summary}"
    if claim is None:
        verdict = Verdict.NOT_EVALUATED
        reason = (
            f"the provider made no claim for {char.requirement}; measured with aimd's default settings "
            "(checks shown against those defaults)"
        )
    return CharacteristicResult(
        key=char.key,
        clause=char.clause,
        title=char.title,
        verdict=verdict,
        reason=reason,
        claim=settings.model_dump(mode="json"),
        method=char.method,
        evidence=evidence,
        seconds=round(time.perf_counter() - started, 3),
        cpu_seconds=round(cpu_seconds() - cpu_started, 3),
    )


def run_characteristics(
    ctx: EvaluationContext,
    claims: Any,
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    progress: Callable[[str], object] | None = None,
    registry: dict[str, Characteristic] | None = None,
) -> list[CharacteristicResult]:
    """One result per registered clause, in clause order.

    Parameters
    ----------
    ctx, claims:
        What to evaluate and what the provider claims (:class:`~aimd.evaluation.claims.Claims`).
    only, skip:
        Characteristic keys to restrict to / leave out (reported as not evaluated with the reason).
    progress:
        Called with each key before it runs.
    registry:
        Characteristics by key (default: every registered one); a clause missing from it is reported
        as having no method.
    """
    chosen = set(check_selection(only, where="--only"))
    skipped = set(check_selection(skip, where="--skip"))
    table = CHARACTERISTICS if registry is None else registry
    results: list[CharacteristicResult] = []
    ctx.network_isolation = egress_scope()
    guard = EgressGuard()
    ctx.egress_attempts = guard.attempts  # the same list: privacy (000 §6.3.9) reads what the guard recorded
    with guard:
        for info in CLAUSES:
            char = table.get(info.key)
            if info.key in skipped:
                results.append(_not_evaluated(info, "skipped on request (--skip)"))
            elif chosen and info.key not in chosen:
                results.append(_not_evaluated(info, "not selected (--only)"))
            elif char is None:
                results.append(_not_evaluated(info, f"aimd has no evaluation method for {info.clause} here"))
            else:
                if progress is not None:
                    progress(info.key)
                results.append(run_characteristic(char, ctx, claims))
    return results


__all__ = ["check_selection", "cpu_seconds", "run_characteristic", "run_characteristics"]
