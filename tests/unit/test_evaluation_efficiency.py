"""000 §6.3.4 efficiency: FLOPs, memory, latency, configurations."""

from __future__ import annotations

from pathlib import Path

import torch
from test_evaluation_support import context

from aimd.evaluation import Claims, Efficiency, EfficiencyClaim, Verdict, count_flops, forward_memory_bytes
from aimd.evaluation.runner import run_characteristic


def test_flops_match_the_analytic_count() -> None:
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
    assert count_flops(conv, (2, 3, 10, 10)) == 2 * 2 * 4 * 3 * 3 * 3 * 10 * 10
    lin = torch.nn.Linear(5, 7)
    assert count_flops(lin, (1, 5)) == 2 * 5 * 7


def test_forward_memory_counts_parameters_and_leaf_outputs() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU())
    mem = forward_memory_bytes(net, (1, 1, 4, 4))
    assert mem["parameters"] == (2 + 2) * 4
    assert mem["activations"] == 2 * (2 * 4 * 4 * 4)


def test_efficiency_conforms_and_fails_against_limits(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    loose = Claims(
        efficiency=EfficiencyClaim(max_parameters=10, max_gflops=1.0, max_latency_p95_ms=5000, runs=3, int8=False)
    )
    res = run_characteristic(Efficiency(), ctx, loose)
    assert res.verdict == Verdict.CONFORM, res.reason
    m = res.evidence.measurements
    assert m["parameters"] == 2
    assert m["gflops_per_sample"] == round(2 * 32 * 32 / 1e9, 6)
    assert m["latency_p50_ms"] <= m["latency_p95_ms"]
    tight = Claims(efficiency=EfficiencyClaim(max_parameters=1, runs=3, int8=False))
    res2 = run_characteristic(Efficiency(), ctx, tight)
    assert res2.verdict == Verdict.NONCONFORM and "parameters" in res2.reason


def test_int8_configuration_is_measured(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    res = run_characteristic(
        Efficiency(), ctx, Claims(efficiency=EfficiencyClaim(runs=3, int8=True, max_int8_metric_drop=0.2))
    )
    rows = {r["configuration"]: r for r in res.evidence.tables[0].rows}
    assert set(rows) == {"model", "onnx_fp32", "onnx_int8_dynamic"}, res.reason
    assert rows["model"]["Dice"] == 1.0 and rows["onnx_fp32"]["Dice"] == 1.0
    assert (tmp_path / "evidence" / "onnx" / "model_fp32.onnx").is_file()
