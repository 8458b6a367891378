"""deepbet (PyPI ``deepbet``, T1 brain extraction): TorchScript from its wheel on a ``grid``³ input.

Example
-------
>>> PIPELINE.name
'deepbet'
"""

from __future__ import annotations

from typing import Any

from aimd.evaluation.pipelines import ExternalPipeline


def _build(grid: int | None) -> Any:
    from aimd.models.external.deepbet import GRID, DeepBet

    return DeepBet(grid=GRID if grid is None else grid)


def _describe(pipeline: Any) -> dict[str, Any]:
    from aimd.models.external.deepbet import describe_deepbet

    return describe_deepbet(pipeline)


PIPELINE = ExternalPipeline(
    name="deepbet",
    build=_build,
    describe=_describe,
    grid_hint="deepbet or deepbet:GRID with GRID a multiple of 32 (256 as trained, 192, 160)",
    summary="deepbet T1 brain extraction (installed wheel)",
)

__all__ = ["PIPELINE"]
