"""Third-party volume pipelines ``aimd evaluate --model NAME[:GRID]`` knows, one module each.

Each module declares an :class:`ExternalPipeline` named ``PIPELINE``: its name, how to build the
:class:`~aimd.models.external.VolumePipeline` for a grid, and how aimd derives its 000 §4
description. :func:`registered` finds them all, so a second third-party model is one new file.

Example
-------
>>> "deepbet" in registered()
True
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aimd.models.external.pipeline import VolumePipeline


@dataclass(frozen=True)
class ExternalPipeline:
    """A third-party volume model aimd can open by name."""

    name: str
    build: Callable[[int | None], VolumePipeline]
    describe: Callable[[VolumePipeline], dict[str, Any]]
    grid_hint: str
    summary: str


def registered() -> dict[str, ExternalPipeline]:
    """Every :class:`ExternalPipeline` declared in a module of this package, by name."""
    out: dict[str, ExternalPipeline] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        entry = getattr(module, "PIPELINE", None)
        if isinstance(entry, ExternalPipeline):
            out[entry.name] = entry
    return out


__all__ = ["ExternalPipeline", "registered"]
