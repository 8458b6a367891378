"""Training runs the training-based characteristics start (000 §6.3.1, §6.3.3).

Example
-------
>>> relative_improvement([2.0, 1.5, 1.0])
0.5
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.errors import InvalidInputError
from aimd.evaluation.context import EvaluationContext


def require_run(ctx: EvaluationContext, clause: str) -> tuple[Path, Path, dict[str, Any]]:
    """The model's run folder, the dataset folder and run.json; an error naming the fix when absent."""
    from aimd.models import load_run

    if ctx.run_dir is None or ctx.dataset_dir is None:
        raise InvalidInputError(
            f"{clause} trains the model, which needs it as an aimd training-run folder plus its dataset",
            where="--model",
            hint="pass the run folder written by aimd model train",
        )
    return ctx.run_dir, ctx.dataset_dir, load_run(ctx.run_dir).info


def train_run(
    ctx: EvaluationContext, out: Path, info: dict[str, Any], settings: dict[str, Any], **fixed: Any
) -> dict[str, Any]:
    """Train with ``settings`` (the provider's TrainConfig fields) plus ``fixed`` into ``out``; return the summary.

    The training record's train-split benchmark is scored on one case unless the settings say
    otherwise: bookkeeping that does not change the trained model (the training-based
    characteristics judge the loss curves and the held-out cases, never that number).
    """
    from aimd.models import make_config, train

    cfg = info.get("config", {})
    base: dict[str, Any] = {
        "task": cfg.get("task"),
        "model": info["model"],
        "target": cfg.get("target"),
        "data": ctx.dataset_dir,
        "out": out,
        "threads": ctx.threads,
        "seed": ctx.seed,
        "force": True,
        "eval_train_cases": 1,
    }
    return train(make_config(**{**base, **settings, **fixed}))


def relative_improvement(losses: list[float]) -> float:
    """``(first − last) / first`` of a loss curve."""
    return round(float((losses[0] - losses[-1]) / losses[0]), 6) if losses[0] else 0.0


def plateaued(losses: list[float], window: int, tolerance: float) -> bool:
    """Whether the relative change over the last ``window`` epochs is at most ``tolerance``.

    Example
    -------
    >>> plateaued([1.0, 0.5, 0.499, 0.4985], 3, 0.01)
    True
    """
    if len(losses) < window:
        return False
    tail = np.asarray(losses[-window:], dtype=np.float64)
    return bool(abs(tail[0] - tail[-1]) <= tolerance * abs(tail[0]))


__all__ = ["plateaued", "relative_improvement", "require_run", "train_run"]
