"""The :class:`Characteristic` template every quality characteristic follows (DESIGN.md).

A characteristic is declared once, in one module of :mod:`aimd.evaluation.characteristics`: its
key, clause, the pydantic model of its claim (which becomes that section of
:class:`~aimd.evaluation.claims.Claims` and of the claims template), where it applies
(:class:`Applicability`) and ``run(context, claim) -> Evidence`` — numbers, tables, plot data and
each claimed quantity compared in a :class:`~aimd.evaluation.evidence.Check`. The registry
(:mod:`aimd.evaluation.registry`) finds it there; the runner catches anything ``run`` raises and
reports the characteristic as not evaluated with the error.

Example
-------
>>> Applicability(training_run=True).why_not(dims=2, trained_run=False)
'needs the model as an aimd training run with its dataset (an inference-only model cannot be trained here)'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence


class ClaimModel(BaseModel):
    """Base of every claim section: unknown fields are errors, so a typo never passes as a claim."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Applicability:
    """Which models a characteristic applies to: item dimensions (2-D slices/images, 3-D volumes) and
    whether it needs the model's training run (trainability, transferability)."""

    dims: frozenset[int] = frozenset({2, 3})
    training_run: bool = False
    note: str = ""

    def why_not(self, *, dims: int, trained_run: bool) -> str | None:
        """Why the characteristic does not apply, ``None`` when it does."""
        if self.training_run and not trained_run:
            return (
                "needs the model as an aimd training run with its dataset (an inference-only model cannot be "
                "trained here)"
            )
        if dims not in self.dims:
            kinds = " or ".join("2-D slice/image" if d == 2 else "3-D volume" for d in sorted(self.dims))
            return f"applies to {kinds} models{f' ({self.note})' if self.note else ''}"
        return None


class Characteristic(ABC):
    """One quality characteristic of 000 §6.2 / §6.3."""

    key: ClassVar[str]
    clause: ClassVar[str]
    requirement: ClassVar[str]
    title: ClassVar[str]
    method: ClassVar[str]
    claim_model: ClassVar[type[BaseModel]]
    applies: ClassVar[Applicability] = Applicability()

    def default_claim(self) -> BaseModel:
        """Measurement settings used when the provider made no claim."""
        return self.claim_model()

    def why_not(self, ctx: EvaluationContext) -> str | None:
        """Why this characteristic does not apply to ``ctx``, ``None`` when it does."""
        return self.applies.why_not(dims=ctx.data.dims, trained_run=ctx.trained_run)

    @abstractmethod
    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        """Measure on ``ctx`` and compare with ``claim`` (an instance of :attr:`claim_model`)."""


def clause_order(clause: str) -> tuple[int, ...]:
    """Sort key of a clause such as ``"000 §6.3.10"``.

    Example
    -------
    >>> sorted(["000 §6.3.10", "000 §6.3.2", "000 §6.2"], key=clause_order)
    ['000 §6.2', '000 §6.3.2', '000 §6.3.10']
    """
    tail = clause.split("§", 1)[-1]
    return tuple(int(p) for p in tail.split(".") if p.isdigit())


__all__ = ["Applicability", "Characteristic", "ClaimModel", "clause_order"]
