"""000 §4.2: structure, nodes, parameters, representation and interpretability, from the network and the specs."""

from __future__ import annotations

import numpy as np

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections.builder import Builder, Subject
from aimd.models.describe.trace import LayerTable, connections, receptive_field


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
