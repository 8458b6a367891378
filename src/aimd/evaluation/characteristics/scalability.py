"""000 §6.3.2 architecture scalability: efficiency as resources change (§5.2.2, A.11).

Inference is timed for every combination of CPU thread count and batch size (and on the GPU
when one is present): throughput and latency curves, the scaling efficiency of threads
(``throughput(n) / (n · throughput(1))``) and the minimum working configuration — the fewest
threads and smallest batch that meet the claimed throughput and latency.

Example
-------
>>> scaling_efficiency({1: 10.0, 2: 15.0})
{1: 1.0, 2: 0.75}
"""

from __future__ import annotations

import os
import time
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table


def scaling_efficiency(throughput: dict[int, float]) -> dict[int, float]:
    """Throughput per thread relative to one thread (1.0 = linear scaling)."""
    base = throughput[min(throughput)] / min(throughput)
    return {n: round(t / (n * base), 4) for n, t in sorted(throughput.items())}


def _time_batch(ctx: EvaluationContext, batch: np.ndarray, runs: int) -> list[float]:
    ctx.predictor.predict(batch)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ctx.predictor.predict(batch)
        out.append(time.perf_counter() - t0)
    return out


class ScalabilityClaim(ClaimModel):
    """000 §5.2.2 / §6.3.2, A.11: efficiency as resources grow; minimum configuration."""

    thread_counts: list[int] = Field(default_factory=lambda: [1, 2], description="CPU threads to try")
    devices: list[Literal["cpu", "cuda"]] = Field(
        default_factory=lambda: ["cpu"], description="cuda: also time the GPU (not evaluated without one)"
    )
    batch_sizes: list[int] = Field(default_factory=lambda: [1, 4, 16])
    runs: int = Field(5, ge=1, le=1000)
    min_images_per_s: float | None = Field(None, gt=0, description="throughput the minimum configuration reaches")
    max_latency_ms: float | None = Field(None, gt=0, description="batch latency the minimum configuration meets")
    min_scaling_efficiency: float | None = Field(None, gt=0, le=1.5, description="throughput(n) / (n · throughput(1))")


def _config(row: dict[str, Any] | None) -> str:
    if row is None:
        return "none"
    where = "GPU" if row["device"] == "cuda" else f"CPU, {row['threads']} thread(s)"
    return f"{where}, batch {row['batch']}: {row['images_per_s']} images/s, {row['latency_ms']} ms"


class Scalability(Characteristic):
    """000 §6.3.2 against the §5.2.2 claim."""

    key = "scalability"
    clause = "000 §6.3.2"
    requirement = "000 §5.2.2"
    title = "Architecture scalability"
    method = (
        "Time inference for each CPU thread count × batch size (GPU too when present); plot throughput and "
        "latency against resources, compute the thread scaling efficiency and find the minimum configuration "
        "meeting the claimed throughput and latency (A.11)."
    )
    claim_model = ScalabilityClaim
    applies = Applicability(dims=frozenset({2}), note="volume models are timed by efficiency only")

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, ScalabilityClaim)
        ev = Evidence()
        rng = np.random.default_rng(ctx.seed)
        rows: list[dict[str, Any]] = []
        previous = torch.get_num_threads()
        try:
            for threads in claim.thread_counts:
                torch.set_num_threads(threads)
                for bs in claim.batch_sizes:
                    ctx.note(f"scalability: {threads} thread(s), batch {bs}")
                    pick = rng.choice(len(ctx.data), size=bs, replace=len(ctx.data) < bs)
                    times = _time_batch(ctx, ctx.data.images[pick], claim.runs)
                    median = float(np.median(times))
                    rows.append(
                        {
                            "device": "cpu",
                            "threads": threads,
                            "batch": bs,
                            "latency_ms": round(median * 1000, 4),
                            "images_per_s": round(bs / median, 3),
                        }
                    )
        finally:
            torch.set_num_threads(previous)
        gpu = torch.cuda.is_available()
        ev.measurements["gpu"] = torch.cuda.get_device_name(0) if gpu else "absent"
        if "cuda" in claim.devices and gpu:
            rows.extend(self._gpu_rows(ctx, claim, rng))
        ev.tables.append(Table(title="Throughput and latency per configuration", columns=list(rows[0]), rows=rows))
        ev.plots.append(
            Plot(
                name="throughput",
                kind="line",
                title="Throughput vs batch size",
                x_label="batch size",
                y_label="images / s",
                series=[
                    Series(
                        name=f"{t} thread(s)",
                        x=[float(r["batch"]) for r in rows if r["threads"] == t],
                        y=[r["images_per_s"] for r in rows if r["threads"] == t],
                    )
                    for t in claim.thread_counts
                ],
            )
        )
        best_bs = max(claim.batch_sizes)
        tput = {
            int(r["threads"]): float(r["images_per_s"]) for r in rows if r["batch"] == best_bs and r["device"] == "cpu"
        }
        eff = scaling_efficiency(tput)
        ev.measurements["scaling_efficiency"] = {str(k): v for k, v in eff.items()}
        ev.measurements["cpu_count"] = os.cpu_count()
        limits = {"min_images_per_s": claim.min_images_per_s, "max_latency_ms": claim.max_latency_ms}
        working = [
            r
            for r in rows
            if (claim.min_images_per_s is None or r["images_per_s"] >= claim.min_images_per_s)
            and (claim.max_latency_ms is None or r["latency_ms"] <= claim.max_latency_ms)
        ]
        minimum = min(working, key=lambda r: (r["device"] != "cpu", r["threads"], r["batch"])) if working else None
        ev.measurements["minimum_working_configuration"] = minimum
        ev.summary = f"minimum working configuration: {_config(minimum)}" if minimum else ""
        if claim.min_images_per_s is not None or claim.max_latency_ms is not None:
            best = max(rows, key=lambda r: r["images_per_s"])
            ev.check(
                "a configuration meets the claimed throughput/latency",
                limits,
                _config(minimum) if minimum else f"none; best {_config(best)}",
                minimum is not None,
                f"minimum working configuration: {_config(minimum)}" if minimum else "no configuration met it",
            )
        else:
            ev.not_evaluated(
                "a configuration meets the claimed throughput/latency",
                limits,
                "the claim sets neither min_images_per_s nor max_latency_ms",
            )
        if "cuda" in claim.devices and not gpu:
            ev.not_evaluated("GPU configurations", "timed", "the claim names cuda but no GPU is present")
        if claim.min_scaling_efficiency is not None and len(eff) > 1:
            worst_n, worst = min(((k, v) for k, v in eff.items() if k != min(eff)), key=lambda kv: kv[1])
            ev.check(
                f"thread scaling efficiency at batch {best_bs}",
                f"≥ {claim.min_scaling_efficiency}",
                worst,
                worst >= claim.min_scaling_efficiency,
                f"worst at {worst_n} threads (cpu_count {os.cpu_count()})",
            )
        elif claim.min_scaling_efficiency is not None:
            ev.not_evaluated(
                f"thread scaling efficiency at batch {best_bs}",
                f"≥ {claim.min_scaling_efficiency}",
                "the claim lists fewer than two thread counts",
            )
        return ev

    @staticmethod
    def _gpu_rows(ctx: EvaluationContext, claim: ScalabilityClaim, rng: np.random.Generator) -> list[dict[str, Any]]:
        """Batch latency on the GPU: the torch module moved to cuda, timed with synchronisation."""
        if ctx.network is None:
            return []
        net = ctx.network.to("cuda").eval()
        rows = []
        try:
            for bs in claim.batch_sizes:
                pick = rng.choice(len(ctx.data), size=bs, replace=len(ctx.data) < bs)
                x = torch.from_numpy(ctx.data.images[pick]).to("cuda")
                times = []
                with torch.inference_mode():
                    for i in range(claim.runs + 1):
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        net(x)
                        torch.cuda.synchronize()
                        if i:
                            times.append(time.perf_counter() - t0)
                median = float(np.median(times))
                rows.append(
                    {
                        "device": "cuda",
                        "threads": 0,
                        "batch": bs,
                        "latency_ms": round(median * 1000, 4),
                        "images_per_s": round(bs / median, 3),
                    }
                )
        finally:
            ctx.network.to("cpu")
        return rows


__all__ = ["Scalability", "ScalabilityClaim", "scaling_efficiency"]
