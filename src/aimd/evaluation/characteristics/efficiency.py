"""000 §6.3.4 model efficiency: compute, memory, storage and latency per configuration (§5.2.4 e–g).

* a) FLOPs of one forward pass, counted by ``torch.utils.flop_counter`` (multiply–add = 2 FLOPs),
  and a check that the pass runs normally;
* b) parameters, memory of one forward pass (parameter bytes + every leaf module's output bytes,
  from forward hooks), model size on disk, latency p50/p95 per batch;
* c) the same per configuration: PyTorch fp32, ONNX Runtime fp32 and dynamic INT8, each with its
  metric on the test data so the accuracy cost of a smaller model is visible.

Example
-------
>>> import torch
>>> count_flops(torch.nn.Conv2d(1, 1, 3, padding=1), (1, 1, 8, 8))
1152
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import Field
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from aimd.evaluation.base import Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.support.onnx_files import export_onnx_configs
from aimd.evaluation.support.scoring import evaluate, metric_name, summarize
from aimd.evaluation.support.stats import paired_difference
from aimd.models.predictor import BasePredictor


def count_flops(network: nn.Module, shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass of ``network`` on a zero tensor of ``shape``."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        network.eval()(torch.zeros(shape))
    return int(counter.get_total_flops())


def forward_memory_bytes(network: nn.Module, shape: tuple[int, ...]) -> dict[str, int]:
    """Parameter bytes and the bytes of every leaf module's output in one forward pass.

    Example
    -------
    >>> forward_memory_bytes(torch.nn.Conv2d(1, 2, 1), (1, 1, 4, 4))["activations"]
    128
    """
    total = {"activations": 0}

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total["activations"] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in network.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            network.eval()(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() * p.element_size() for p in network.parameters())
    buffers = sum(b.numel() * b.element_size() for b in network.buffers())
    return {"parameters": int(params + buffers), "activations": int(total["activations"])}


def latency_ms(predictor: BasePredictor, batch: NDArray[np.float32], *, runs: int, warmup: int = 2) -> list[float]:
    """Wall-clock milliseconds of ``runs`` calls of ``predictor.predict(batch)`` after ``warmup`` calls."""
    for _ in range(warmup):
        predictor.predict(batch)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        predictor.predict(batch)
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def state_size_bytes(network: nn.Module) -> int:
    """Bytes of ``network``'s state dict as ``torch.save`` writes it."""
    buf = io.BytesIO()
    torch.save(network.state_dict(), buf)
    return len(buf.getvalue())


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values), q)), 4)


class EfficiencyClaim(ClaimModel):
    """000 §5.2.4 e–g / §6.3.4 a–c: compute, memory, storage and latency."""

    max_gflops: float | None = Field(None, gt=0, description="forward-pass GFLOP per sample")
    max_parameters: int | None = Field(None, gt=0)
    max_memory_mb: float | None = Field(None, gt=0, description="parameters + activations of one forward pass")
    max_size_mb: float | None = Field(None, gt=0, description="model file size on disk")
    max_latency_p95_ms: float | None = Field(None, gt=0, description="p95 latency of one batch")
    batch_size: int = Field(1, ge=1)
    runs: int = Field(20, ge=3, le=10000)
    threads: int = Field(2, ge=1)
    int8: bool = Field(True, description="also measure ONNX fp32 and dynamic INT8 configurations")
    max_int8_metric_drop: float | None = Field(None, ge=0, description="allowed metric drop fp32 → INT8")


class Efficiency(Characteristic):
    """000 §6.3.4 against the §5.2.4 claim."""

    key = "efficiency"
    clause = "000 §6.3.4"
    requirement = "000 §5.2.4"
    title = "Model efficiency"
    method = (
        "Count forward-pass FLOPs (torch flop counter), parameters, forward memory (parameter bytes + "
        "leaf-module output bytes) and model size on disk; time repeated batches after warm-up and "
        "report p50/p95 latency; repeat latency, size and the test metric for PyTorch fp32, ONNX Runtime "
        "fp32 and dynamic INT8 (§6.3.4 a–c)."
    )
    claim_model = EfficiencyClaim

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, EfficiencyClaim)
        ev = Evidence()
        spec = ctx.predictor.input_spec
        shape = (1, spec.channels, *spec.patch_size)
        m = ev.measurements
        torch.set_num_threads(claim.threads)
        if ctx.network is not None:
            flops = count_flops(ctx.network, shape)
            mem = forward_memory_bytes(ctx.network, shape)
            m["gflops_per_sample"] = round(flops / 1e9, 6)
            m["parameters"] = int(sum(p.numel() for p in ctx.network.parameters()))
            m["memory_mb"] = round((mem["parameters"] + mem["activations"]) / 2**20, 3)
            m["memory_breakdown_bytes"] = mem
        if ctx.model_file is not None and ctx.model_file.is_file():
            m["size_mb"] = round(ctx.model_file.stat().st_size / 2**20, 4)
            m["size_source"] = str(ctx.model_file)
        elif ctx.network is not None:
            m["size_mb"] = round(state_size_bytes(ctx.network) / 2**20, 4)
            m["size_source"] = "state dict serialised with torch.save"
        rng = np.random.default_rng(ctx.seed)
        pick = rng.choice(len(ctx.data), size=claim.batch_size, replace=len(ctx.data) < claim.batch_size)
        batch = ctx.data.images[pick]
        ctx.note("efficiency: timing the model")
        configs: dict[str, tuple[BasePredictor, Path | None]] = {"model": (ctx.predictor, ctx.model_file)}
        if claim.int8 and ctx.network is not None:
            from aimd.models.adapters.onnx import OnnxPredictor

            ctx.note("efficiency: exporting ONNX fp32 and INT8")
            for name, path in export_onnx_configs(ctx).items():
                configs[name] = (OnnxPredictor(path, threads=claim.threads), path)
        rows: list[dict[str, Any]] = []
        series: list[Series] = []
        scores: dict[str, dict[str, float]] = {}
        for name, (pred, path) in configs.items():
            times = latency_ms(pred, batch, runs=claim.runs)
            per_case = evaluate(pred, ctx.data)
            summary = summarize(list(per_case.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
            scores[name] = per_case
            size = (
                path.stat().st_size
                if path is not None and path.is_file()
                else state_size_bytes(ctx.network)
                if ctx.network is not None and name == "model"
                else None
            )
            rows.append(
                {
                    "configuration": name,
                    "adapter": pred.metadata.get("adapter", ""),
                    "p50_ms": _percentile(times, 50),
                    "p95_ms": _percentile(times, 95),
                    "mean_ms": round(float(np.mean(times)), 4),
                    "images_per_s": round(claim.batch_size * 1000.0 / float(np.mean(times)), 2),
                    "size_mb": None if size is None else round(size / 2**20, 4),
                    metric_name(ctx.data.task): summary["estimate"],
                    "ci_low": summary["ci_low"],
                    "ci_high": summary["ci_high"],
                }
            )
            srt = sorted(times)
            series.append(
                Series(
                    name=name, x=[round(t, 4) for t in srt], y=[round((i + 1) / len(srt), 4) for i in range(len(srt))]
                )
            )
        model_row = rows[0]
        m.update(
            {
                "latency_p50_ms": model_row["p50_ms"],
                "latency_p95_ms": model_row["p95_ms"],
                "batch_size": claim.batch_size,
                "runs": claim.runs,
                "threads": claim.threads,
                "cpu_count": os.cpu_count(),
            }
        )
        ev.tables.append(Table(title="Configurations (§6.3.4 c)", columns=list(rows[0]), rows=rows))
        ev.plots.append(
            Plot(
                name="latency_cdf",
                kind="line",
                title="Latency distribution per configuration",
                x_label="latency per batch (ms)",
                y_label="cumulative fraction",
                series=series,
            )
        )
        self._checks(ev, claim, m, scores, ctx)
        return ev

    @staticmethod
    def _checks(
        ev: Evidence,
        claim: EfficiencyClaim,
        m: dict[str, Any],
        scores: dict[str, dict[str, float]],
        ctx: EvaluationContext,
    ) -> None:
        limits = [
            ("GFLOP per sample", claim.max_gflops, "gflops_per_sample"),
            ("parameters", claim.max_parameters, "parameters"),
            ("forward memory MB", claim.max_memory_mb, "memory_mb"),
            ("size on disk MB", claim.max_size_mb, "size_mb"),
            ("latency p95 ms", claim.max_latency_p95_ms, "latency_p95_ms"),
        ]
        for name, limit, key in limits:
            if limit is None:
                continue
            value = m.get(key)
            if value is None:
                ev.not_evaluated(name, f"≤ {limit}", "not measurable for this model type (no torch module)")
            else:
                ev.check(name, f"≤ {limit}", value, value <= limit)
        if claim.max_int8_metric_drop is None:
            return
        label = "metric drop fp32 → INT8 (paired, upper CI bound)"
        if "onnx_int8_dynamic" not in scores:
            why = (
                "the claim sets int8: false"
                if not claim.int8
                else "no INT8 copy: aimd quantises only a torch module it can export to ONNX"
            )
            ev.not_evaluated(label, f"≤ {claim.max_int8_metric_drop}", why)
            return
        drop = paired_difference(
            scores["model"], scores["onnx_int8_dynamic"], seed=ctx.seed, n_resamples=ctx.bootstrap_resamples
        )
        m["int8_metric_drop"] = drop
        ev.at_most(label, claim.max_int8_metric_drop, drop, f"{drop['n']} test cases")


__all__ = ["Efficiency", "EfficiencyClaim", "count_flops", "forward_memory_bytes", "latency_ms", "state_size_bytes"]
