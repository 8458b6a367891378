"""Independent pieces of one characteristic (a perturbation, an attack budget) as Ray tasks, or here.

:func:`task_map` returns ``[fn(*job) for job in jobs]``: computed in this process when the
context has no ``ray``, otherwise as one Ray task per job (:func:`aimd.core.distributed.ray_map`),
results in job order. Each task runs with the evaluation's torch thread budget and seeds of its
own job, so the numbers are the same wherever it ran.

Example
-------
>>> from types import SimpleNamespace
>>> task_map(SimpleNamespace(ray=None, threads=1), pow, [(2, 3), (3, 2)])
[8, 9]
>>> execution(SimpleNamespace(ray="local"))
'ray (local)'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def _with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def execution(ctx: Any) -> str:
    """How the pieces ran, for the evidence: ``single process``, ``ray (local)`` or ``ray (ADDRESS)``."""
    from aimd.core.distributed import ray_label

    return "single process" if getattr(ctx, "ray", None) is None else ray_label(ctx.ray)


def task_map(ctx: Any, fn: Callable[..., Any], jobs: Sequence[tuple[Any, ...]]) -> list[Any]:
    """``[fn(*job) for job in jobs]``, as Ray tasks when ``ctx.ray`` names where (``"local"`` or an address)."""
    if getattr(ctx, "ray", None) is None:
        return [fn(*job) for job in jobs]
    from aimd.core.distributed import ray_map

    return ray_map(_with_threads, [(ctx.threads, fn, *job) for job in jobs], address=ctx.ray)


__all__ = ["execution", "task_map"]
