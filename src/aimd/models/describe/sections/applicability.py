"""000 §4.5: applicable modalities, tasks, environment (measured on this machine) and downstream training needs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections.builder import Builder, Subject
from aimd.models.describe.trace import LayerTable, flops_per_sample
from aimd.models.record import environment

MEASURE_BUDGET_FLOPS = 50e9


def _measure(network: nn.Module, sample: tuple[int, ...], threads: int, flops: int) -> dict[str, Any]:
    """Median CPU latency and throughput at batch 1 (and 8 when cheap), each timed for about 1.5 s."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        net = network.eval()
        results: dict[str, Any] = {"threads": threads}
        for batch in (1, 8) if flops * 8 <= MEASURE_BUDGET_FLOPS else (1,):
            x = torch.rand((batch, *sample))
            with torch.inference_mode():
                net(x)
                times = []
                budget = time.perf_counter() + 1.5
                while len(times) < 3 or (time.perf_counter() < budget and len(times) < 50):
                    t0 = time.perf_counter()
                    net(x)
                    times.append(time.perf_counter() - t0)
            median = float(np.median(times))
            results[f"batch{batch}_ms"] = round(median * 1000, 2)
            results[f"batch{batch}_images_per_s"] = round(batch / median, 1)
        return results
    finally:
        torch.set_num_threads(old)


def _applicability(
    b: Builder, s: Subject, provider: ProviderInfo, table: LayerTable, measure: bool | None, threads: int
) -> None:
    pa = provider.applicability
    b.add(
        "4.5.1",
        "modalities",
        "modalities for inference",
        f"{s.input_spec.modality} only (other modalities are rejected by the input check)",
        "spec",
    )
    b.add(
        "4.5.1",
        "after_finetuning",
        "modalities after fine-tuning",
        pa.modalities_after_finetuning,
        "provider",
        required=False,
        hint="applicability.modalities_after_finetuning",
    )
    b.add(
        "4.5.2", "task", "task type", f"image {s.output_spec.task} ({', '.join(s.output_spec.labels.values())})", "spec"
    )
    parent = (s.run.info.get("parent") or {}) if s.run else {}
    similarity = pa.domain_similarity or (
        f"fine-tuned from source task {parent.get('target')!r} ({parent.get('model')}) to "
        f"{s.output_spec.target!r}: same modality and input representation, new output space"
        if parent.get("target")
        else None
    )
    b.add(
        "4.5.2",
        "similarity",
        "source/downstream domain similarity",
        similarity,
        "provider" if pa.domain_similarity else "training record",
        hint="applicability.domain_similarity",
    )
    b.add(
        "4.5.2",
        "scenarios",
        "scenarios and sample form",
        pa.scenarios
        or (
            f"{s.input_spec.modality} {'volumes (axial slices)' if s.output_spec.task == 'segmentation' else 'images'}"
            f" in {s.input_spec.intensity.describe()}"
        ),
        "provider" if pa.scenarios else "spec",
        hint="applicability.scenarios",
    )
    test = s.run.record["benchmark"]["test"] if s.run else None
    b.add(
        "4.5.2",
        "expected_performance",
        "expected performance",
        pa.expected_performance
        or ({"metric": test["metric"], "test_value": test.get("dice_mean", test.get("auc"))} if test else None),
        "provider" if pa.expected_performance else "training record",
        hint="applicability.expected_performance",
    )
    b.add(
        "4.5.2",
        "test_methods",
        "robustness / generalisation test methods",
        " / ".join(x for x in (pa.robustness_methods, pa.generalization_methods) if x) or None,
        "provider",
        hint="applicability.robustness_methods and applicability.generalization_methods",
    )
    sample = tuple(abs(x) for x in table.input_shape[1:])
    env = environment()
    compute = {
        "flops_per_sample": flops_per_sample(s.network, sample),
        "parameter_memory_mb": round(table.total_params * 4 / 1024**2, 1),
    }
    flops = compute["flops_per_sample"]
    on_meta = any(p.device.type == "meta" for p in s.network.parameters())
    if measure is None:
        measure = flops <= MEASURE_BUDGET_FLOPS and not on_meta
    if measure and not on_meta:
        compute["measured_cpu"] = _measure(s.network, sample, threads, flops)
    else:
        compute["measured_cpu"] = (
            f"not measured: {flops / 1e9:.1f} GFLOP per sample exceeds the automatic budget "
            f"of {MEASURE_BUDGET_FLOPS / 1e9:.0f} GFLOP (pass measure=True / --measure)"
        )
    b.add("4.5.3", "compute", "compute needed (this machine)", compute, "measured")
    b.add("4.5.3", "hardware", "hardware and software (inference, measured here)", env, "measured")
    if s.run:
        b.add(
            "4.5.3", "training_environment", "training environment", s.run.record.get("environment"), "training record"
        )
    b.add(
        "4.5.3",
        "recommended",
        "recommended hardware",
        pa.recommended_hardware,
        "provider",
        required=False,
        hint="applicability.recommended_hardware",
    )
    downstream = pa.downstream_data
    if downstream is None and s.run and parent.get("target"):
        st = s.run.record["data"]["statistics"]["train"]
        downstream = (
            f"this fine-tuning used {st['cases']} training cases ({st['items']} items, case fraction "
            f"{s.run.record['data']['case_fraction']}) of {s.input_spec.modality}"
        )
    b.add(
        "4.5.4",
        "data",
        "downstream data needs",
        downstream,
        "provider" if pa.downstream_data else "training record",
        required=False,
        hint="applicability.downstream_data",
    )
    settings = pa.finetuning_settings or (
        (
            s.run.record["learning"]["method"]
            + ", augmentation "
            + ", ".join(a["name"] for a in s.run.record["learning"]["augmentation"])
        )
        if s.run and parent.get("target")
        else None
    )
    b.add(
        "4.5.4",
        "settings",
        "fine-tuning settings",
        settings,
        "provider" if pa.finetuning_settings else "training record",
        required=False,
        hint="applicability.finetuning_settings",
    )
