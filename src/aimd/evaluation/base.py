"""The :class:`Characteristic` template every quality characteristic follows (DESIGN.md).

A characteristic names its clause, describes its method, *measures* (``measure``: numbers,
tables, plot data, each claim compared in an :class:`~aimd.evaluation.evidence.Check`) and is
*judged* from those checks. The runner catches anything ``measure`` raises and reports the
characteristic as not evaluated with the error.

Example
-------
>>> from aimd.evaluation.efficiency import Efficiency
>>> Efficiency.clause
'000 §6.3.4'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from aimd.evaluation.claims import Claims
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence


class Characteristic(ABC):
    """One quality characteristic of 000 §6.2 / §6.3."""

    key: ClassVar[str]
    clause: ClassVar[str]
    requirement: ClassVar[str]
    title: ClassVar[str]
    method: ClassVar[str]
    claim_model: ClassVar[type[BaseModel]]

    def claim_of(self, claims: Claims) -> BaseModel | None:
        """The provider's claim for this characteristic, ``None`` when none was made."""
        value: Any = getattr(claims, self.key, None)
        return value

    def default_claim(self) -> BaseModel:
        """Measurement settings used when the provider made no claim."""
        return self.claim_model()

    @abstractmethod
    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
        """Measure on ``ctx`` and compare with ``claim``."""


__all__ = ["Characteristic"]
