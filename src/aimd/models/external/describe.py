"""000 §4 description of a third-party TorchScript model: derive what the archive shows, list the rest.

A TorchScript archive keeps its module tree, parameters and graph, so aimd derives the structure
(§4.2.1), node and connection counts from the graph (§4.2.2), parameters and shapes (§4.2.3), the
data representation from the specs and the pipeline (§4.2.4), and FLOPs and this machine's
environment (§4.5.3). What only the provider can state — training data (§4.3), learning method
(§4.4.1), expected performance — comes from a :class:`ProviderInfo` or becomes a *gap*; nothing
is invented. Per-layer neuron counts need forward hooks, which TorchScript does not allow: that
item is a gap too.

Example
-------
>>> graph_counts(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.ReLU())))["relu"]
1
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from aimd import __version__
from aimd.models.adapters.torchscript import TorchScriptPredictor
from aimd.models.describe import DESCRIPTION_FORMAT
from aimd.models.describe.archive import (
    ACTIVATIONS,
    add_framework,
    add_parameter_counts,
    add_structure,
    add_topology,
    add_training_data,
    graph_counts,
    module_types,
)
from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections import Builder
from aimd.models.record import environment


def _forward(module: torch.nn.Module, shape: list[int]) -> tuple[list[int], int]:
    """Output shape and FLOPs of one forward pass on zeros of ``shape`` (batch 1)."""
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        out = module(torch.zeros(shape))
    return [int(s) for s in out.shape], int(counter.get_total_flops())


def describe_torchscript(
    predictor: TorchScriptPredictor,
    *,
    name: str,
    version: str | None = None,
    provider: str | None = None,
    preprocessing: Sequence[str] = (),
    postprocessing: str | None = None,
    info: ProviderInfo | None = None,
    sources: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The 000 §4 description of a TorchScript model behind ``predictor``, as a JSON-ready dict.

    Parameters
    ----------
    predictor:
        The model, with its declared specs.
    name, version, provider:
        Identity as the package states it (e.g. from its metadata).
    preprocessing, postprocessing:
        The pipeline's steps around the network (000 §4.2.4 d).
    info:
        Provider statements aimd cannot derive; missing ones become gaps.
    sources:
        Where ``version``/``provider`` came from (default ``package metadata``).

    Example
    -------
    >>> import tempfile, pathlib
    >>> from aimd.models.specs import InputSpec, OutputSpec
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
    >>> torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 1, 1)), str(path))
    >>> p = TorchScriptPredictor(path, InputSpec(modality="CT", patch_size=(8, 8)),
    ...                          OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid"))
    >>> doc = describe_torchscript(p, name="conv")
    >>> gaps = {g["clause"] for g in doc["gaps"]}
    >>> doc["sections"]["4.2.3"]["items"]["total"]["value"], "000 §4.3.1" in gaps
    (2, True)
    """
    info = info or ProviderInfo()
    src = {"version": "package metadata", "provider": "package metadata", **(sources or {})}
    module = predictor.module
    spec, out = predictor.input_spec, predictor.output_spec
    b = Builder()
    _overview(b, predictor, info, name, version, provider, src)
    types = module_types(module)
    blocks = {
        n: {
            "type": getattr(c, "original_name", type(c).__name__),
            "params": int(sum(p.numel() for p in c.parameters())),
        }
        for n, c in module.named_children()
    }
    add_structure(b, module, types)
    b.add("4.2.1", "source", "source of the structure", info.structure_notes, "provider", hint="structure_notes")
    b.add("4.2.1", "blocks", "blocks (in definition order)", blocks, "model")
    counts = graph_counts(module)
    b.add("4.2.2", "neurons", "neuron nodes (output units of weighted layers, one input sample)", None, "model")
    add_topology(b, counts)
    b.add(
        "4.2.2",
        "activations",
        "activation functions",
        [f"{k}×{counts[k]}" for k in ACTIVATIONS if counts[k]] + [f"declared output: {out.activation}"],
        "model",
    )
    convs = sum(v for k, v in types.items() if k.startswith("Conv") and "Transpose" not in k)
    b.add(
        "4.2.2",
        "connections",
        "connection types",
        [
            f"{convs} convolution(s) (local connections)",
            f"{sum(v for k, v in types.items() if 'Transpose' in k)} transposed convolution(s)",
            f"{counts['additions']} addition(s) (residual / skip connections)",
            f"{counts['concatenations']} concatenation(s)",
        ],
        "model",
    )
    params = list(module.parameters())
    out_shape, flops = _forward(module, spec.input_shape(batch=1))
    shape_out = [-1, *out_shape[1:]]
    add_parameter_counts(b, module)
    b.add("4.2.3", "per_block", "parameters per block", {k: v["params"] for k, v in blocks.items()}, "model")
    b.add("4.2.3", "layer_types", "layer types (modules)", types, "model")
    b.add("4.2.3", "input_shape", "input shape", spec.input_shape(), "spec")
    b.add("4.2.3", "output_shape", "output shape", shape_out, "model")
    b.add(
        "4.2.4",
        "abstraction",
        "level of abstraction",
        f"{spec.modality} image intensities, normalised by the pipeline; no feature extraction before the network",
        "spec",
    )
    b.add(
        "4.2.4", "dtype", "data type", f"raw voxels: {', '.join(spec.raw_dtypes)}; network input: {spec.dtype}", "spec"
    )
    b.add(
        "4.2.4",
        "dims",
        "dimensions and sizes",
        f"{spec.dims}-D, {spec.channels} channel(s), input {spec.input_shape()}, values in "
        f"{list(spec.value_range)}; output {shape_out}; any size that is a multiple of "
        f"{spec.size_multiple}",
        "model",
    )
    labels = ", ".join(out.labels.values())
    b.add("4.2.4", "encoding", "encoding", f"labels: {out.encoding()} ({labels})", "spec")
    b.add("4.2.4", "preprocessing", "preprocessing", list(preprocessing) or None, "pipeline", hint="preprocessing")
    b.add("4.2.4", "postprocessing", "postprocessing", postprocessing or out.postprocessing(), "pipeline")
    b.add(
        "4.2.5",
        "provider",
        "provider's interpretability findings",
        info.interpretability,
        "provider",
        required=False,
        hint="interpretability",
    )
    _data_and_training(b, info, out.description)
    b.add(
        "4.5.1",
        "modalities",
        "modalities for inference",
        f"{spec.modality} only (other modalities are rejected by the input check)",
        "spec",
    )
    b.add("4.5.2", "task", "task type", f"{spec.dims}-D {out.task} ({labels})", "spec")
    b.add(
        "4.5.2",
        "expected_performance",
        "expected performance",
        info.applicability.expected_performance,
        "provider",
        hint="applicability.expected_performance",
    )
    memory = round(sum(p.numel() * p.element_size() for p in params) / 2**20, 2)
    b.add("4.5.3", "compute", "compute needed", {"flops_per_sample": flops, "parameter_memory_mb": memory}, "measured")
    b.add("4.5.3", "hardware", "hardware and software (inference, measured here)", environment(), "measured")
    b.add(
        "4.5.3",
        "recommended",
        "recommended hardware",
        info.applicability.recommended_hardware,
        "provider",
        required=False,
        hint="applicability.recommended_hardware",
    )
    meta = {k: v for k, v in predictor.metadata.items() if isinstance(v, str | int | float)}
    return {
        "format": DESCRIPTION_FORMAT,
        "version": "1",
        "aimd_version": __version__,
        "model": {"name": name, "kind": "torchscript", **meta},
        "input_spec": spec.model_dump(mode="json"),
        "output_spec": out.model_dump(mode="json"),
        "sections": b.sections,
        "layers": [],
        "gaps": b.gaps,
        "provider_file": None,
    }


def _overview(
    b: Builder,
    predictor: TorchScriptPredictor,
    info: ProviderInfo,
    name: str,
    version: str | None,
    provider: str | None,
    src: dict[str, str],
) -> None:
    b.add("4.1", "name", "model name", info.name or name, "provider" if info.name else "model")
    b.add(
        "4.1",
        "version",
        "release version",
        info.version or version,
        "provider" if info.version else src["version"],
        hint="version",
    )
    b.add(
        "4.1",
        "provider",
        "provider",
        info.provider or provider,
        "provider" if info.provider else src["provider"],
        hint="provider",
    )
    add_framework(b, "run")
    b.add(
        "4.1",
        "identity",
        "weights identity",
        {"weights_sha256": predictor.metadata.get("weights_sha256"), "source": predictor.metadata.get("source")},
        "model",
        required=False,
    )


def _data_and_training(b: Builder, info: ProviderInfo, domain: str) -> None:
    add_training_data(b, info)
    b.add(
        "4.3.3",
        "deidentification",
        "privacy protection / de-identification",
        info.data.deidentification,
        "provider",
        hint="data.deidentification",
    )
    b.add("4.3.4", "benchmark", "benchmark performance", None, "provider", required=False)
    b.add("4.4.1", "method", "learning method", None, "provider")
    b.add(
        "4.4.3",
        "domain",
        "task domain",
        info.task_domain or domain or None,
        "provider" if info.task_domain else "spec",
        hint="task_domain",
    )


__all__ = ["describe_torchscript", "graph_counts", "module_types"]
