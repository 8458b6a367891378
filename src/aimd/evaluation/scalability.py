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
from typing import Any

import numpy as np
import torch

from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, ScalabilityClaim
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


class Scalability(Characteristic):
    """000 §6.3.2 against the §5.2.2 claim."""

    key = "scalability"
    clause = "000 §6.3.2"
    requirement = "000 §5.2.2"
    title = "Architecture scalability"
    method = ("Time inference for each CPU thread count × batch size (GPU too when present); plot throughput and "
              "latency against resources, compute the thread scaling efficiency and find the minimum configuration "
              "meeting the claimed throughput and latency (A.11).")
    claim_model = ScalabilityClaim

    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
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
                    rows.append({"device": "cpu", "threads": threads, "batch": bs,
                                 "latency_ms": round(median * 1000, 4),
                                 "images_per_s": round(bs / median, 3)})
        finally:
            torch.set_num_threads(previous)
        ev.measurements["gpu"] = "present" if torch.cuda.is_available() else "absent: CPU configurations only"
        ev.tables.append(Table(title="Throughput and latency per configuration", columns=list(rows[0]), rows=rows))
        ev.plots.append(Plot(name="throughput", kind="line", title="Throughput vs batch size",
                             x_label="batch size", y_label="images / s", series=[
                                 Series(name=f"{t} thread(s)", x=[float(r["batch"]) for r in rows if r["threads"] == t],
                                        y=[r["images_per_s"] for r in rows if r["threads"] == t])
                                 for t in claim.thread_counts]))
        best_bs = max(claim.batch_sizes)
        tput = {int(r["threads"]): float(r["images_per_s"]) for r in rows if r["batch"] == best_bs}
        eff = scaling_efficiency(tput)
        ev.measurements["scaling_efficiency"] = {str(k): v for k, v in eff.items()}
        ev.measurements["cpu_count"] = os.cpu_count()
        working = [r for r in rows if (claim.min_images_per_s is None or r["images_per_s"] >= claim.min_images_per_s)
                   and (claim.max_latency_ms is None or r["latency_ms"] <= claim.max_latency_ms)]
        minimum = min(working, key=lambda r: (r["threads"], r["batch"])) if working else None
        ev.measurements["minimum_working_configuration"] = minimum
        if claim.min_images_per_s is not None or claim.max_latency_ms is not None:
            ev.check("a configuration meets the claimed throughput/latency",
                     {"min_images_per_s": claim.min_images_per_s, "max_latency_ms": claim.max_latency_ms},
                     minimum, minimum is not None)
        if claim.min_scaling_efficiency is not None and len(eff) > 1:
            worst = min(v for k, v in eff.items() if k != min(eff))
            ev.check(f"thread scaling efficiency at batch {best_bs}", f"≥ {claim.min_scaling_efficiency}", worst,
                     worst >= claim.min_scaling_efficiency)
        return ev


__all__ = ["Scalability", "scaling_efficiency"]
