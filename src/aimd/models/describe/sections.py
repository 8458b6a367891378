"""Build the 000 §4 model description: derive what can be derived, take the rest from the provider,
list what is still missing as gaps (never invent).

Each item records its clause, a label, its value and its source: ``model`` (the network, traced),
``spec`` (declared input/output specs), ``training record``, ``dataset`` (dataset.json via the
record), ``measured`` (this machine) or ``provider`` (the provider YAML). An item the standard
requires ("应") that has no value becomes a gap with the YAML key that would fill it; optional
items ("宜") that are missing are listed as optional gaps.

Example
-------
>>> b = Builder()
>>> b.add("4.1", "version", "release version", None, "provider", hint="version")
>>> b.gaps[0]["clause"], b.gaps[0]["required"]
('000 §4.1', True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.trace import LayerTable, connections, flops_per_sample, receptive_field
from aimd.models.record import environment
from aimd.models.runs import Run
from aimd.models.specs import InputSpec, OutputSpec
from aimd.models.targets import TARGETS
from aimd.models.zoo import ZooEntry

TITLES = {
    "4.1": "概述 Overview",
    "4.2.1": "模型结构 Model structure",
    "4.2.2": "模型节点 Model nodes",
    "4.2.3": "模型参数 Model parameters",
    "4.2.4": "模型数据表示 Data representation",
    "4.2.5": "模型可解释性 Interpretability",
    "4.3.1": "数据模态 Data modality",
    "4.3.2": "数据量 Data amount",
    "4.3.3": "数据质量 Data quality",
    "4.3.4": "基准性能 Benchmark performance",
    "4.4.1": "学习方法 Learning method",
    "4.4.2": "训练设置 Training settings",
    "4.4.3": "任务域 Task domain",
    "4.5.1": "适用数据模态 Applicable modalities",
    "4.5.2": "适用任务类型 Applicable task types",
    "4.5.3": "适用环境 Environment",
    "4.5.4": "下游任务训练需求 Downstream training needs",
}


@dataclass
class Subject:
    """The model being described and what is known about it."""

    name: str
    kind: str
    network: nn.Module
    input_spec: InputSpec
    output_spec: OutputSpec
    entry: ZooEntry | None = None
    run: Run | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Builder:
    """Collects items per clause and the gaps."""

    def __init__(self) -> None:
        self.sections: dict[str, dict[str, Any]] = {k: {"title": v, "items": {}} for k, v in TITLES.items()}
        self.gaps: list[dict[str, Any]] = []

    def add(
        self,
        clause: str,
        key: str,
        label: str,
        value: Any,
        source: str,
        *,
        required: bool = True,
        hint: str | None = None,
    ) -> None:
        """Record one item; a missing value becomes a gap naming the provider YAML key ``hint``."""
        empty = value is None or value == "" or value == [] or value == {}
        if empty:
            self.gaps.append(
                {
                    "clause": f"000 §{clause}",
                    "item": label,
                    "required": required,
                    "hint": f"state it in the provider YAML as {hint}"
                    if hint
                    else "not derivable from the model; state it in the provider YAML",
                }
            )
            return
        self.sections[clause]["items"][key] = {"label": label, "value": value, "source": source}


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


def _structure(b: Builder, s: Subject, provider: ProviderInfo, table: LayerTable) -> None:
    e = s.entry
    structure = (
        e.structure
        if e
        else (
            f"{type(s.network).__name__} ({type(s.network).__module__}); layer types: "
            + ", ".join(f"{k}×{v}" for k, v in table.layer_types().items())
        )
    )
    b.add("4.2.1", "structure", "overall structure", structure, "model")
    b.add(
        "4.2.1",
        "source",
        "source of the structure",
        e.source if e else provider.structure_notes,
        "model" if e else "provider",
        hint="structure_notes",
    )
    b.add(
        "4.2.1",
        "differences",
        "differences from the published structure",
        e.differences if e else None,
        "model",
        hint="structure_notes",
    )
    if provider.structure_notes and e:
        b.add("4.2.1", "provider_notes", "provider notes", provider.structure_notes, "provider")
    b.add("4.2.1", "blocks", "blocks (in forward order)", list(table.blocks), "model")


def _nodes(b: Builder, s: Subject, table: LayerTable) -> None:
    conn = connections(s.network)
    acts = sorted({r.type for r in table.rows if r.activation})
    kinds = []
    types = table.layer_types()
    if any(t.startswith(("Conv", "ConvTranspose")) for t in types):
        kinds.append("local connections (convolution) between successive layers")
    if "Linear" in types:
        kinds.append("full connections (Linear)")
    if any(r.name.endswith("attn.qkv") for r in table.rows):
        kinds.append("global token-to-token connections (multi-head self-attention)")
    if conn.get("concatenations"):
        kinds.append(f"{conn['concatenations']} concatenation(s) joining earlier feature maps (skip connections)")
    if conn.get("additions"):
        kinds.append(f"{conn['additions']} residual addition(s)")
    b.add(
        "4.2.2", "neurons", "neuron nodes (output units of weighted layers, one input sample)", table.neurons, "model"
    )
    b.add(
        "4.2.2",
        "distribution",
        "distribution of neurons per block",
        {k: v["neurons"] for k, v in table.blocks.items() if v["neurons"]},
        "model",
    )
    b.add(
        "4.2.2",
        "topology",
        "distribution scheme",
        "feed-forward (no recurrence)"
        if conn.get("traced")
        else "feed-forward assumed; graph not symbolically traceable",
        "model",
    )
    b.add("4.2.2", "activations", "activation functions", acts + [f"{s.output_spec.activation} (output)"], "model")
    b.add("4.2.2", "connections", "connection types", kinds, "model")


def _parameters(b: Builder, table: LayerTable) -> None:
    b.add("4.2.3", "total", "parameters (total)", table.total_params, "model")
    b.add("4.2.3", "trainable", "parameters (trainable)", table.trainable_params, "model")
    b.add("4.2.3", "per_block", "parameters per block", {k: v["params"] for k, v in table.blocks.items()}, "model")
    b.add("4.2.3", "layer_types", "layer types (calls)", table.layer_types(), "model")
    b.add("4.2.3", "input_shape", "input shape", table.input_shape, "model")
    b.add("4.2.3", "output_shape", "output shape", table.output_shape, "model")


def _representation(b: Builder, s: Subject, table: LayerTable) -> None:
    spec, out = s.input_spec, s.output_spec
    elements = int(np.prod([abs(x) for x in table.input_shape[1:]]))
    b.add(
        "4.2.4",
        "abstraction",
        "level of abstraction",
        f"raw {spec.modality} image data ({spec.intensity.describe()}); no feature extraction or selection "
        "before the network",
        "spec",
    )
    b.add(
        "4.2.4", "dtype", "data type", f"raw pixels: {', '.join(spec.raw_dtypes)}; network input: {spec.dtype}", "spec"
    )
    b.add(
        "4.2.4",
        "dims",
        "dimensions and sizes",
        f"{spec.dims}-D images, {spec.channels} channel(s), input {table.input_shape} ({elements} elements per "
        f"sample); output {table.output_shape}"
        + ("" if spec.fixed_size else f"; any size that is a multiple of {spec.size_multiple}"),
        "model",
    )
    b.add(
        "4.2.4",
        "encoding",
        "encoding",
        f"input: linear intensity encoding (brighter = larger value) after {spec.intensity.describe()}; "
        f"labels: {out.encoding()}",
        "spec",
    )
    pre = [spec.intensity.describe()]
    if spec.resize_to:
        pre.append(f"bilinear resize to {spec.resize_to[0]}×{spec.resize_to[1]}")
    if spec.dims == 2 and out.task == "segmentation":
        pre.append(
            "volumes processed as axial slices; sliding-window inference over "
            f"{'×'.join(map(str, spec.patch_size))} patches when larger (MONAI)"
        )
    if spec.spacing_mm:
        pre.append(
            f"in-plane spacing must be within ±{spec.spacing_tolerance:.0%} of "
            f"{spec.spacing_mm[0]:g}×{spec.spacing_mm[1]:g} mm; other modalities rejected"
        )
    b.add("4.2.4", "preprocessing", "preprocessing", pre, "spec")
    b.add(
        "4.2.4",
        "postprocessing",
        "postprocessing",
        out.postprocessing()
        + ("; slices stacked back into the input volume's geometry" if out.task == "segmentation" else ""),
        "spec",
    )


def _interpretability(b: Builder, s: Subject, provider: ProviderInfo, table: LayerTable) -> None:
    rf = receptive_field(table)
    if rf["global"]:
        note = (
            f"patch tokens of {rf['pixels']} px; self-attention gives every token a global view from the "
            "first block, and attention weights can be read out per head as attention maps"
        )
    else:
        note = (
            f"convolutional encoder–decoder: the deepest encoder features see {rf['pixels']}×{rf['pixels']} px "
            f"(total stride {rf['stride']}); early layers respond to local edges, deeper ones to larger "
            "structures; activation maps per layer can be visualised"
        )
    b.add("4.2.5", "derived", "derived from the architecture", note, "model", required=False)
    b.add(
        "4.2.5",
        "provider",
        "provider's interpretability findings",
        provider.interpretability,
        "provider",
        required=False,
        hint="interpretability",
    )


def _data(b: Builder, s: Subject, provider: ProviderInfo) -> None:
    record = s.run.record if s.run else None
    pd = provider.data
    if record is None:
        for clause, label, hint in (
            ("4.3.1", "source-task data modality", "data.acquisition_devices"),
            ("4.3.2", "data amount and splits", None),
            ("4.3.3", "data quality", "data.quality_criteria"),
        ):
            b.add(clause, "missing", label, None, "training record", hint=hint or "a training run (--run)")
        b.add(
            "4.3.4",
            "missing",
            "benchmark performance",
            None,
            "training record",
            required=False,
            hint="a training run (--run)",
        )
        return
    data = record["data"]
    synthetic = data.get("format") == "aimd-phantom-dataset"
    b.add(
        "4.3.1",
        "modality",
        "data modality",
        f"medical images: {data.get('modality')}" + (" (simulated)" if synthetic else ""),
        "training record",
    )
    devices = [
        f"{x.get('manufacturer')} {x.get('model')} ({x.get('site_id')}, simulated)" for x in data.get("sites", [])
    ]
    b.add(
        "4.3.1",
        "devices",
        "acquisition devices",
        pd.acquisition_devices or devices,
        "provider" if pd.acquisition_devices else "dataset",
        hint="data.acquisition_devices",
    )
    gen = data.get("generator") or {}
    b.add(
        "4.3.1",
        "synthetic",
        "simulated data and how it was generated",
        pd.synthetic_method
        or (
            f"yes: {gen.get('module')} {gen.get('aimd_version')} with {gen.get('params')}; "
            "anatomy, lesions, CT noise per site and radiographs projected from the CT"
            if synthetic
            else None
        ),
        "provider" if pd.synthetic_method else "dataset",
        hint="data.synthetic_method",
    )
    b.add(
        "4.3.1",
        "annotation",
        "annotation source, amount and quality",
        pd.annotation
        or (
            f"labels are the generator's exact ground truth (target {data['target']}); "
            f"{len(data.get('files', {}))} labelled files"
            if synthetic
            else None
        ),
        "provider" if pd.annotation else "dataset",
        hint="data.annotation",
    )
    st = data["statistics"]
    b.add(
        "4.3.2",
        "total",
        "total amount",
        f"{sum(v['cases'] for v in st.values())} cases, {sum(v['items'] for v in st.values())} "
        f"{'slices' if s.output_spec.task == 'segmentation' else 'images'}",
        "training record",
    )
    b.add(
        "4.3.2",
        "splits",
        "train / validation / test",
        {k: {"cases": v["cases"], "items": v["items"], "sites": v["sites"]} for k, v in st.items()},
        "training record",
    )
    b.add(
        "4.3.2",
        "distribution",
        "class distribution per split",
        {k: v["class_fraction"] for k, v in st.items()},
        "training record",
    )
    b.add("4.3.2", "differences", "distribution differences between splits", data.get("differences"), "training record")
    b.add(
        "4.3.3",
        "integrity",
        "accuracy / completeness / consistency",
        f"{len(data.get('files', {}))} files read, each matching the SHA-256 in dataset.json "
        f"(sha256 {data.get('dataset_sha256', '')[:16]}…); image and label grids checked equal",
        "training record",
    )
    b.add(
        "4.3.3",
        "criteria",
        "selection criteria and cleaning",
        pd.quality_criteria
        or ("all generated cases used; no cleaning needed (simulated, exact labels)" if synthetic else None),
        "provider" if pd.quality_criteria else "dataset",
        hint="data.quality_criteria",
    )
    b.add(
        "4.3.3",
        "standard",
        "dataset standard followed",
        pd.dataset_standard,
        "provider",
        required=False,
        hint="data.dataset_standard",
    )
    b.add(
        "4.3.3",
        "deidentification",
        "privacy protection / de-identification",
        pd.deidentification or ("simulated subjects only; no real patient data" if synthetic else None),
        "provider" if pd.deidentification else "dataset",
        hint="data.deidentification",
    )
    b.add(
        "4.3.4",
        "benchmark",
        "performance on train / validation / test",
        {k: {"metric": v["metric"], "value": v.get("dice_mean", v.get("auc"))} for k, v in record["benchmark"].items()},
        "training record",
        required=False,
    )


def _training(b: Builder, s: Subject, provider: ProviderInfo) -> None:
    record = s.run.record if s.run else None
    if record is None:
        b.add("4.4.1", "method", "learning method", None, "training record", hint="a training run (--run)")
        b.add(
            "4.4.2",
            "settings",
            "training settings",
            None,
            "training record",
            required=False,
            hint="a training run (--run)",
        )
        b.add(
            "4.4.3",
            "domain",
            "task domain",
            provider.task_domain or s.output_spec.description or None,
            "provider" if provider.task_domain else "spec",
            hint="task_domain",
        )
        return
    learning = record["learning"]
    b.add("4.4.1", "method", "learning method", learning["method"], "training record")
    this_task = f"{record['data']['target']}: {record['data']['task_domain']}"
    parent = s.run.info.get("parent") or {}
    domains = [record["data"]["task_domain"]]
    if parent.get("target") in TARGETS:
        source = TARGETS[parent["target"]]
        b.add(
            "4.4.1",
            "source_task",
            "source task (pre-training)",
            f"{source.name}: {source.domain} (run {parent.get('run_id')})",
            "training record",
        )
        b.add("4.4.1", "downstream_task", "downstream task (this fine-tuning)", this_task, "training record")
        domains.insert(0, source.domain)
    else:
        b.add("4.4.1", "source_task", "source task", this_task, "training record")
    cfg = s.run.info.get("config", {})
    b.add(
        "4.4.2",
        "augmentation",
        "data augmentation (applied counts)",
        learning["augmentation"],
        "training record",
        required=False,
    )
    b.add(
        "4.4.2",
        "initialisation",
        "weight initialisation",
        learning["initialisation"],
        "training record",
        required=False,
    )
    b.add("4.4.2", "optimizer", "optimizer", learning["optimizer"], "training record", required=False)
    b.add(
        "4.4.2",
        "hyperparameters",
        "main hyper-parameters",
        {
            "epochs_run": record["epochs_run"],
            "max_epochs": cfg.get("epochs"),
            "batch_size": learning["batch_size"],
            "schedule": learning["schedule"],
            "loss": learning["loss"],
            "early_stopping": learning["early_stopping"],
            "lora": learning.get("lora"),
            "distillation": learning.get("distillation"),
            "seed": learning["seed"],
        },
        "training record",
        required=False,
    )
    b.add(
        "4.4.3",
        "domain",
        "task domain(s)",
        provider.task_domain or domains,
        "provider" if provider.task_domain else "training record",
        hint="task_domain",
    )


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


def build_sections(
    s: Subject, provider: ProviderInfo, table: LayerTable, *, measure: bool | None = None, threads: int = 2
) -> Builder:
    """All 000 §4 items for ``s``."""
    b = Builder()
    version = provider.version or (s.run.info.get("version") if s.run else None)
    b.add("4.1", "name", "model name", provider.name or s.name, "provider" if provider.name else "model")
    b.add(
        "4.1",
        "version",
        "release version",
        version,
        "provider" if provider.version else "training record",
        hint="version",
    )
    b.add("4.1", "provider", "provider", provider.provider, "provider", hint="provider")
    b.add("4.1", "framework", "framework", f"PyTorch {torch.__version__.split('+')[0]}", "model")
    b.add(
        "4.1",
        "identity",
        "weights identity",
        {k: s.meta.get(k) for k in ("weights_sha256", "run_id", "source") if s.meta.get(k)} or None,
        "model",
        required=False,
        hint="version",
    )
    _structure(b, s, provider, table)
    _nodes(b, s, table)
    _parameters(b, table)
    _representation(b, s, table)
    _interpretability(b, s, provider, table)
    _data(b, s, provider)
    _training(b, s, provider)
    _applicability(b, s, provider, table, measure, threads)
    return b


__all__ = ["TITLES", "Builder", "Subject", "build_sections"]
