"""000 §4 items a TorchScript archive shows, and the §4.3 data items only a provider can state.

Shared by the description of a bare model file (:mod:`aimd.models.describe.files`) and of a
third-party TorchScript model with specs (:mod:`aimd.models.external.describe`): the module tree
and graph give the structure (§4.2.1), the distribution scheme (§4.2.2) and the parameter counts
(§4.2.3); the training data items (§4.3.1–§4.3.3) come from a :class:`ProviderInfo` or are gaps.

Example
-------
>>> graph_counts(torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1), torch.nn.ReLU())))["relu"]
1
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections import Builder

ACTIVATIONS = ("relu", "sigmoid", "softmax", "tanh", "gelu", "leaky_relu", "elu", "silu")


def graph_counts(module: torch.jit.ScriptModule) -> dict[str, int]:
    """Operator counts in the inlined TorchScript graph: additions, concatenations, loops, activations."""
    kinds = Counter(node.kind() for node in module.inlined_graph.nodes())
    out = {
        "additions": kinds["aten::add"] + kinds["aten::add_"],
        "concatenations": kinds["aten::cat"],
        "loops": kinds["prim::Loop"],
    }
    for act in ACTIVATIONS:
        out[act] = kinds[f"aten::{act}"] + kinds[f"aten::{act}_"]
    return out


def module_types(module: torch.nn.Module) -> dict[str, int]:
    """Counts of leaf module types (TorchScript keeps each submodule's original class name).

    Example
    -------
    >>> module_types(torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1), torch.nn.ReLU()))
    {'Conv3d': 1, 'ReLU': 1}
    """
    counts: Counter[str] = Counter()
    for _, sub in module.named_modules():
        if not list(sub.children()):
            counts[getattr(sub, "original_name", type(sub).__name__)] += 1
    return dict(sorted(counts.items()))


def add_framework(b: Builder, verb: str) -> None:
    """§4.1 framework: TorchScript and the torch version that ``verb`` (read / ran) the archive."""
    b.add(
        "4.1",
        "framework",
        "framework",
        f"PyTorch TorchScript ({verb} with torch {torch.__version__.split('+')[0]})",
        "model",
    )


def add_structure(b: Builder, module: Any, types: dict[str, int]) -> None:
    """§4.2.1 overall structure: the root module's name and its leaf module types."""
    root = getattr(module, "original_name", type(module).__name__)
    leaves = ", ".join(f"{k}×{v}" for k, v in types.items())
    b.add("4.2.1", "structure", "overall structure", f"{root} (TorchScript archive); leaf modules: {leaves}", "model")


def add_topology(b: Builder, counts: dict[str, int]) -> None:
    """§4.2.2 distribution scheme: feed-forward unless the graph has loops."""
    b.add(
        "4.2.2",
        "topology",
        "distribution scheme",
        "feed-forward (no loops in the TorchScript graph)"
        if counts["loops"] == 0
        else f"{counts['loops']} loop(s) in the TorchScript graph",
        "model",
    )


def add_parameter_counts(b: Builder, module: torch.nn.Module) -> None:
    """§4.2.3 parameters, total and trainable."""
    params = list(module.parameters())
    b.add("4.2.3", "total", "parameters (total)", int(sum(p.numel() for p in params)), "model")
    b.add(
        "4.2.3", "trainable", "parameters (trainable)", int(sum(p.numel() for p in params if p.requires_grad)), "model"
    )


def add_training_data(b: Builder, info: ProviderInfo) -> None:
    """§4.3.1–§4.3.3 items only the provider can state: devices, annotation, amount, selection criteria."""
    data = info.data
    b.add(
        "4.3.1",
        "devices",
        "source-task data modality and acquisition devices",
        data.acquisition_devices,
        "provider",
        hint="data.acquisition_devices",
    )
    b.add(
        "4.3.1",
        "annotation",
        "annotation source, amount and quality",
        data.annotation,
        "provider",
        hint="data.annotation",
    )
    b.add("4.3.2", "amount", "data amount and splits", None, "provider")
    b.add(
        "4.3.3",
        "criteria",
        "selection criteria and cleaning",
        data.quality_criteria,
        "provider",
        hint="data.quality_criteria",
    )


__all__ = [
    "ACTIVATIONS",
    "add_framework",
    "add_parameter_counts",
    "add_structure",
    "add_topology",
    "add_training_data",
    "graph_counts",
    "module_types",
]
