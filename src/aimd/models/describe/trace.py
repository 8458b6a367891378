"""Derive a network's structure from the network itself (000 §4.2.2–§4.2.3, Table B.1).

* :func:`trace_layers` runs one forward pass with hooks on every leaf module — on PyTorch's
  ``meta`` device, so even the 171 M-parameter ViT traces instantly without allocating weights —
  and returns one row per call: block, name like ``Conv2d-1``, type, kernel, stride, output shape
  (batch as -1, as Table B.1) and parameter count. Parameters owned directly by container modules
  (a ViT's class token and position embeddings) get their own rows, so the rows add up to the
  exact total.
* :func:`connections` reads the ``torch.fx`` graph: concatenations (U-Net skip connections) and
  tensor additions (residual connections).
* :func:`receptive_field` computes the theoretical receptive field of the encoder path.
* :func:`flops_per_sample` counts floating-point operations of one forward pass.

Example
-------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())
>>> table = trace_layers(net, (1, 8, 8))
>>> [(r.layer, r.output_shape, r.params) for r in table.rows]
[('Conv2d-1', [-1, 4, 8, 8], 40), ('ReLU-2', [-1, 4, 8, 8], 0)]
"""

from __future__ import annotations

import copy
import operator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_ACTIVATIONS = (nn.ReLU, nn.GELU, nn.Sigmoid, nn.Softmax, nn.Tanh, nn.LeakyReLU, nn.PReLU, nn.SiLU, nn.ELU)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)


def _pair(value: Any) -> str | None:
    if value is None:
        return None
    values = value if isinstance(value, tuple | list) else (value,)
    return "×".join(str(int(v)) for v in values)


@dataclass
class LayerRow:
    """One traced layer call."""

    index: int
    block: str
    name: str
    layer: str
    type: str
    kernel: str | None
    stride: str | None
    output_shape: list[int] | None
    params: int
    trainable_params: int
    neurons: int
    activation: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return asdict(self)


@dataclass
class LayerTable:
    """All traced rows plus totals."""

    rows: list[LayerRow]
    input_shape: list[int]
    output_shape: list[int]
    total_params: int
    trainable_params: int
    blocks: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def rows_params(self) -> int:
        """Sum of the rows' parameter counts (equals ``total_params``)."""
        return sum(r.params for r in self.rows)

    @property
    def neurons(self) -> int:
        """Output units of all weighted layers for one input sample."""
        return sum(r.neurons for r in self.rows)

    def layer_types(self) -> dict[str, int]:
        """Count of calls per layer type."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.type] = out.get(r.type, 0) + 1
        return out


def _to_meta(model: nn.Module) -> nn.Module:
    if any(p.device.type == "meta" for p in model.parameters()):
        return model
    return copy.deepcopy(model).to("meta")


def trace_layers(model: nn.Module, sample_shape: tuple[int, ...]) -> LayerTable:
    """Trace one forward pass of a single sample ``(channels, *spatial)`` on the meta device."""
    net = _to_meta(model).eval()
    rows: list[LayerRow] = []
    seen: set[int] = set()
    names = {id(m): n for n, m in net.named_modules()}
    handles = []

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        first = id(module) not in seen
        seen.add(id(module))
        own = list(module.parameters(recurse=False)) if first else []
        shape = list(output.shape) if isinstance(output, torch.Tensor) else None
        if shape:
            shape[0] = -1
        name = names[id(module)]
        neurons = 1
        for s in (shape or [0])[1:]:
            neurons *= s
        rows.append(
            LayerRow(
                index=len(rows) + 1,
                block=name.split(".")[0] if name else "(model)",
                name=name,
                layer=f"{type(module).__name__}-{len(rows) + 1}",
                type=type(module).__name__,
                kernel=_pair(getattr(module, "kernel_size", None)),
                stride=_pair(getattr(module, "stride", None)),
                output_shape=shape,
                params=sum(p.numel() for p in own),
                trainable_params=sum(p.numel() for p in own if p.requires_grad),
                neurons=neurons if isinstance(module, _WEIGHTED) and shape else 0,
                activation=isinstance(module, _ACTIVATIONS),
            )
        )

    for module in net.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            out = net(torch.empty((1, *sample_shape), device="meta"))
    finally:
        for h in handles:
            h.remove()
    leaf_ids = {id(m) for m in net.modules() if not list(m.children())}
    for name, module in net.named_modules():
        direct = list(module.parameters(recurse=False))
        if id(module) in leaf_ids or not direct:
            continue
        for pname, p in module.named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            rows.append(
                LayerRow(
                    index=len(rows) + 1,
                    block=name.split(".")[0] if name else "(model)",
                    name=full,
                    layer=f"Parameter-{len(rows) + 1}",
                    type="Parameter",
                    kernel=None,
                    stride=None,
                    output_shape=list(p.shape),
                    params=p.numel(),
                    trainable_params=p.numel() if p.requires_grad else 0,
                    neurons=0,
                    activation=False,
                )
            )
    out_shape = list(out.shape) if isinstance(out, torch.Tensor) else []
    if out_shape:
        out_shape[0] = -1
    blocks: dict[str, dict[str, int]] = {}
    for r in rows:
        b = blocks.setdefault(r.block, {"layers": 0, "params": 0, "neurons": 0})
        b["layers"] += 1
        b["params"] += r.params
        b["neurons"] += r.neurons
    return LayerTable(
        rows=rows,
        input_shape=[-1, *sample_shape],
        output_shape=out_shape,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        blocks=blocks,
    )


def connections(model: nn.Module) -> dict[str, Any]:
    """Skip (concatenation) and residual (addition) connections read from the ``torch.fx`` graph.

    Returns ``{"traced": False, "reason": ...}`` when the model cannot be traced symbolically.
    """
    try:
        graph = torch.fx.symbolic_trace(_to_meta(model)).graph
    except Exception as err:  # fx raises many types for untraceable control flow
        return {"traced": False, "reason": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"}
    concat = 0
    residual = 0
    for node in graph.nodes:
        if node.op == "call_function" and node.target in (torch.cat, torch.concat):
            concat += 1
        if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
            tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
            if len(tensors) == 2:
                residual += 1
    return {"traced": True, "concatenations": concat, "additions": residual}


def receptive_field(table: LayerTable) -> dict[str, Any]:
    """Theoretical receptive field (pixels) along the layers before the first upsampling layer.

    Each convolution or pooling of kernel k and stride s grows the field by (k − 1)·j, where j is
    the product of earlier strides. Self-attention makes the field global.
    """
    field_px, jump = 1, 1
    for row in table.rows:
        if row.type.startswith("ConvTranspose") or row.type in {"Upsample"}:
            break
        if row.type in {"Attention", "MultiheadAttention"}:
            return {"pixels": None, "global": True, "after": row.layer}
        if row.kernel and row.type.startswith(("Conv", "MaxPool", "AvgPool")):
            k = int(row.kernel.split("×")[0])
            s = int((row.stride or "1").split("×")[0])
            field_px += (k - 1) * jump
            jump *= s
    attention = any(r.name.endswith(".attn.qkv") or r.type in {"MultiheadAttention"} for r in table.rows)
    return {"pixels": field_px, "global": attention, "stride": jump}


def flops_per_sample(model: nn.Module, sample_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass of one sample (PyTorch's FLOP counter, on meta)."""
    net = _to_meta(model).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.empty((1, *sample_shape), device="meta"))
    return int(counter.get_total_flops())


__all__ = ["LayerRow", "LayerTable", "connections", "flops_per_sample", "receptive_field", "trace_layers"]
