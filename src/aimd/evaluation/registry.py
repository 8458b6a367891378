"""The registry of quality characteristics: every module of :mod:`aimd.evaluation.characteristics`.

Each module there declares one :class:`~aimd.evaluation.base.Characteristic`; :func:`discover`
imports them all and orders them by clause. The runner's tables (:data:`CHARACTERISTICS`,
:data:`CLAUSES`), the sections of :class:`~aimd.evaluation.claims.Claims`, the claims template and
the report's section list are all built from it, so a new characteristic is one new file.

Example
-------
>>> [c.key for c in CLAUSES][:3]
['description', 'trainability', 'scalability']
>>> len(CLAUSE_KEYS)
10
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass

from aimd.evaluation import characteristics as _package
from aimd.evaluation.base import Characteristic, clause_order


def discover() -> tuple[Characteristic, ...]:
    """One instance of every characteristic declared under :mod:`aimd.evaluation.characteristics`, in clause order."""
    found: list[Characteristic] = []
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, Characteristic)
                and not inspect.isabstract(obj)
                and obj.__module__ == module.__name__
            ):
                found.append(obj())
    keys = [c.key for c in found]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    if duplicated:
        raise RuntimeError(f"characteristic key(s) declared twice: {duplicated}")
    return tuple(sorted(found, key=lambda c: clause_order(c.clause)))


@dataclass(frozen=True)
class ClauseInfo:
    """One evaluated clause of 000 §6 and the requirement it checks."""

    key: str
    clause: str
    requirement: str
    title: str


REGISTRY: tuple[Characteristic, ...] = discover()
CHARACTERISTICS: dict[str, Characteristic] = {c.key: c for c in REGISTRY}
CLAUSES: tuple[ClauseInfo, ...] = tuple(ClauseInfo(c.key, c.clause, c.requirement, c.title) for c in REGISTRY)
CLAUSE_KEYS: tuple[str, ...] = tuple(c.key for c in CLAUSES)

__all__ = ["CHARACTERISTICS", "CLAUSES", "CLAUSE_KEYS", "REGISTRY", "ClauseInfo", "discover"]
