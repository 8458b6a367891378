"""The 000 §4 description of a bare model file: any TorchScript archive or ONNX graph.

``aimd model describe FILE`` accepts what ``aimd evaluate --model`` accepts. From the file alone
aimd derives what it allows — parameter count, inputs and outputs (names, shapes), operator or
module counts, file size and hash, FLOPs where an input shape is known — and lists everything else
(training data, learning method, intended use, …) as gaps for the provider to state.

Example
-------
>>> import tempfile, pathlib, torch
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
>>> torch.jit.save(torch.jit.script(torch.nn.Conv2d(1, 2, 3)), str(path))
>>> doc = describe_file(path)
>>> doc["sections"]["4.2.3"]["items"]["total"]["value"], doc["model"]["kind"]
(20, 'torchscript')
>>> any(g["item"] == "input shape" for g in doc["gaps"])
True
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from aimd import __version__
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.models.describe.archive import (
    add_framework,
    add_parameter_counts,
    add_structure,
    add_topology,
    add_training_data,
    graph_counts,
    module_types,
)
from aimd.models.describe.provider import ProviderInfo, load_provider
from aimd.models.describe.sections import Builder

MODEL_SUFFIXES = (".pt", ".ts", ".pth", ".jit", ".onnx")


def is_model_file(path: str | Path) -> bool:
    """Whether ``path`` is a file aimd describes as a bare model (TorchScript or ONNX)."""
    p = Path(path)
    return p.is_file() and p.suffix.lower() in MODEL_SUFFIXES


def _provider_items(b: Builder, info: ProviderInfo) -> None:
    b.add("4.2.1", "source", "source of the structure", info.structure_notes, "provider", hint="structure_notes")
    b.add("4.2.4", "preprocessing", "preprocessing", None, "provider", hint="preprocessing")
    add_training_data(b, info)
    b.add("4.4.1", "method", "learning method", None, "provider")
    b.add("4.4.3", "domain", "task domain", info.task_domain, "provider", hint="task_domain")
    b.add("4.5.1", "modalities", "modalities for inference", None, "provider")
    b.add("4.5.2", "task", "task type", None, "provider")
    b.add(
        "4.5.2",
        "expected_performance",
        "expected performance",
        info.applicability.expected_performance,
        "provider",
        hint="applicability.expected_performance",
    )


def _onnx(path: Path, b: Builder) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    try:
        graph_model = onnx.load(str(path))
    except Exception as err:
        raise InvalidInputError(
            f"not a readable ONNX file: {err}",
            where=str(path),
            hint="export the model with torch.onnx.export or aimd model export",
        ) from err
    graph = graph_model.graph
    weights = {i.name for i in graph.initializer}
    params = int(sum(numpy_helper.to_array(i).size for i in graph.initializer))

    def shape(value: Any) -> list[int | str]:
        dims = value.type.tensor_type.shape.dim
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]

    inputs = {v.name: shape(v) for v in graph.input if v.name not in weights}
    outputs = {v.name: shape(v) for v in graph.output}
    ops = dict(Counter(n.op_type for n in graph.node).most_common())
    b.add(
        "4.1",
        "framework",
        "framework",
        f"ONNX (IR {graph_model.ir_version}, opset "
        f"{', '.join(str(o.version) for o in graph_model.opset_import)}; producer "
        f"{graph_model.producer_name or 'unknown'} {graph_model.producer_version})",
        "model",
    )
    b.add(
        "4.2.1",
        "structure",
        "overall structure",
        f"ONNX graph of {len(graph.node)} nodes; operators: " + ", ".join(f"{k}×{v}" for k, v in ops.items()),
        "model",
    )
    b.add(
        "4.2.2",
        "topology",
        "distribution scheme",
        "feed-forward graph" if "Loop" not in ops and "Scan" not in ops else "graph with Loop/Scan operators",
        "model",
    )
    b.add("4.2.3", "total", "parameters (total)", params, "model")
    b.add("4.2.3", "layer_types", "operator types", ops, "model")
    b.add("4.2.3", "input_shape", "input shape", next(iter(inputs.values()), None), "model")
    b.add("4.2.3", "output_shape", "output shape", next(iter(outputs.values()), None), "model")
    b.add("4.2.4", "dims", "inputs and outputs (name: shape)", {"inputs": inputs, "outputs": outputs}, "model")
    b.add("4.5.3", "compute", "compute needed (FLOPs per sample)", None, "model")
    return {"kind": "onnx", "inputs": inputs, "outputs": outputs}


def _torchscript(path: Path, b: Builder) -> dict[str, Any]:
    import torch

    try:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as err:
        raise InvalidInputError(
            f"not a loadable TorchScript archive: {err}",
            where=str(path),
            hint="save it with torch.jit.save (a state dict is not a runnable model)",
        ) from err
    types = module_types(module)
    add_framework(b, "read")
    add_structure(b, module, types)
    add_topology(b, graph_counts(module))
    add_parameter_counts(b, module)
    b.add("4.2.3", "layer_types", "layer types (modules)", types, "model")
    b.add("4.2.3", "input_shape", "input shape", None, "model")  # a TorchScript archive states no input shape
    b.add("4.2.3", "output_shape", "output shape", None, "model")
    b.add("4.5.3", "compute", "compute needed (FLOPs per sample)", None, "model")
    return {"kind": "torchscript"}


def describe_file(path: str | Path, *, extra: str | Path | None = None) -> dict[str, Any]:
    """The 000 §4 description of the TorchScript or ONNX file ``path``, with every underivable item a gap.

    A file aimd exported itself carries its specs; it is described through its adapter instead
    (input shape, FLOPs and the I/O specs are then known).
    """
    p = Path(path)
    if not is_model_file(p):
        raise InvalidInputError(
            "not a TorchScript or ONNX file",
            where=str(p),
            hint=f"pass a file ending in one of {', '.join(MODEL_SUFFIXES)}",
        )
    info = load_provider(extra)
    if p.suffix.lower() != ".onnx":
        try:
            from aimd.models.adapters import load_predictor
            from aimd.models.external.describe import describe_torchscript

            predictor: Any = load_predictor(p)
            return describe_torchscript(predictor, name=info.name or p.stem, info=info)
        except AimdError:
            pass  # no aimd specs inside: describe what the bare archive allows
    b = Builder()
    found = _onnx(p, b) if p.suffix.lower() == ".onnx" else _torchscript(p, b)
    b.add("4.1", "name", "model name", info.name or p.stem, "provider" if info.name else "file name")
    b.add("4.1", "version", "release version", info.version, "provider", hint="version")
    b.add("4.1", "provider", "provider", info.provider, "provider", hint="provider")
    b.add(
        "4.1",
        "identity",
        "file identity",
        {"file": str(p), "sha256": sha256_file(p), "size_mb": round(p.stat().st_size / 2**20, 4)},
        "model",
    )
    _provider_items(b, info)
    return {
        "format": "aimd-model-description",
        "version": "1",
        "aimd_version": __version__,
        "model": {"name": info.name or p.stem, **found, "source": str(p)},
        "input_spec": None,
        "output_spec": None,
        "sections": b.sections,
        "layers": [],
        "gaps": b.gaps,
        "provider_file": str(extra) if extra else None,
    }


__all__ = ["MODEL_SUFFIXES", "describe_file", "is_model_file"]
