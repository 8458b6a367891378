"""What both reference recipes share: thread and seed settings, the cosine schedule, the run record.

Example
-------
>>> lr = cosine_lr(1e-3, step=50, total=100, warmup=10)
>>> round(lr, 6)
0.000595
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aimd import __version__
from aimd.metrics.statistics import bootstrap_ci
from aimd.models.record import environment


@dataclass(frozen=True)
class RecipeSettings:
    """Settings both recipes share; each recipe adds its own (all have defaults)."""

    seed: int = 0
    size: int = 64
    warmup: int = 50
    weight_decay: float = 1e-4
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


@contextmanager
def torch_settings(threads: int, seed: int) -> Iterator[None]:
    """Run with ``threads`` CPU threads and every generator seeded; restore the thread count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def cosine_lr(base: float, *, step: int, total: int, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 2 % of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def log_every(steps: int) -> int:
    """Steps between learning-curve points: 50, or a tenth of a short run."""
    return max(1, min(50, steps // 10))


def run_steps(
    net: torch.nn.Module,
    *,
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float,
    batch_loss: Callable[[torch.nn.Module], torch.Tensor],
    watch: Stopwatch,
    progress: Callable[[int, float], object] | None = None,
) -> list[dict[str, float]]:
    """AdamW steps on the cosine schedule; ``batch_loss(net)`` draws a batch and returns its loss.

    Returns the learning curve: every :func:`log_every` steps the mean loss, the rate and the times.
    The network is left in eval mode.
    """
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    curve: list[dict[str, float]] = []
    window_losses: list[float] = []
    net.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = cosine_lr(lr, step=step, total=steps, warmup=warmup)
        loss = batch_loss(net)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window_losses.append(float(loss.detach()))
        if (step + 1) % log_every(steps) == 0 or step + 1 == steps:
            curve.append(
                {
                    "step": step + 1,
                    "loss": round(float(np.mean(window_losses)), 5),
                    "lr": round(opt.param_groups[0]["lr"], 7),
                    **watch.read(),
                }
            )
            window_losses = []
            if progress:
                progress(step + 1, curve[-1]["loss"])
    net.eval()
    return curve


def code_version() -> dict[str, Any]:
    """aimd's version and, when run from a git checkout, the commit."""
    out: dict[str, Any] = {"aimd": __version__}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if commit.returncode == 0:
            out["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def mean_ci(values: list[float] | np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Mean with a 95 % bootstrap CI over cases (BCa); "not evaluated" with fewer than 2 values."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return {
            "estimate": float(arr.mean()) if arr.size else None,
            "ci_low": None,
            "ci_high": None,
            "n": int(arr.size),
            "note": "not evaluated: fewer than 2 cases",
        }
    ci = bootstrap_ci(arr, np.mean, seed=seed, n_resamples=2000)
    return {**ci.to_dict(), "n": int(arr.size)}


def ratio_ci(num: np.ndarray, den: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """sum(num) / sum(den) with a 95 % case-resampling (paired) bootstrap CI."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    if den.sum() == 0 or num.size < 2:
        return {
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "n": int(num.size),
            "note": "not evaluated: nothing to divide by",
        }

    def stat(a: np.ndarray, b: np.ndarray) -> float:
        total = float(np.sum(b))
        return float(np.sum(a)) / total if total else float("nan")

    ci = bootstrap_ci((num, den), stat, seed=seed, n_resamples=2000, method="percentile")
    return {**ci.to_dict(), "n": int(num.size)}


class Stopwatch:
    """Wall and process CPU seconds since creation."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def read(self) -> dict[str, float]:
        """``{"wall_seconds", "cpu_seconds"}`` so far."""
        return {
            "wall_seconds": round(time.perf_counter() - self.wall, 1),
            "cpu_seconds": round(time.process_time() - self.cpu, 1),
        }


def machine() -> dict[str, Any]:
    """Hardware and software of this run, with the load average when training started."""
    env = environment()
    try:
        import os

        env["load_average_1min"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return env


__all__ = [
    "Stopwatch",
    "code_version",
    "cosine_lr",
    "froc_ci",
    "headline",
    "log_every",
    "machine",
    "mean_ci",
    "ratio_ci",
    "torch_settings",
]


def froc_ci(
    refs: list[Any], dets: list[Any], *, rate: float, seed: int = 0, n_resamples: int = 500, **match: Any
) -> dict[str, Any]:
    """FROC sensitivity at ``rate`` FPs per image with a 95 % percentile bootstrap CI over images.

    Each resample draws images with replacement (renamed so repeats stay distinct) and runs
    :func:`aimd.metrics.detection_rates.froc` on them.
    """
    from dataclasses import replace

    from aimd.metrics.detection_rates import froc

    point = froc(refs, dets, rates=(rate,), **match).sensitivity_at[0]
    rng = np.random.default_rng(seed)
    n = len(refs)
    values = []
    for b in range(n_resamples):
        pick = rng.integers(0, n, n)
        rr = [replace(refs[i], image_id=(b, k)) for k, i in enumerate(pick)]
        dd = [replace(dets[i], image_id=(b, k)) for k, i in enumerate(pick)]
        if sum(len(r) for r in rr) == 0:
            continue
        values.append(froc(rr, dd, rates=(rate,), **match).sensitivity_at[0])
    low, high = (float(v) for v in np.quantile(values, [0.025, 0.975])) if values else (None, None)
    return {
        "estimate": float(point),
        "ci_low": low,
        "ci_high": high,
        "confidence": 0.95,
        "method": "percentile",
        "n_resamples": len(values),
        "seed": seed,
        "rate_fp_per_image": rate,
        "n": n,
    }


def headline(metrics: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``keys`` of an evaluation with their estimate, 95 % CI and n (the summary kept in records and the zoo).

    Example
    -------
    >>> headline({"dice": {"estimate": 0.7, "ci_low": 0.6, "ci_high": 0.8, "n": 9, "seed": 0}}, ("dice",))
    {'dice': {'estimate': 0.7, 'ci_low': 0.6, 'ci_high': 0.8, 'n': 9}}
    """
    return {key: {k: metrics[key].get(k) for k in ("estimate", "ci_low", "ci_high", "n")} for key in keys}
