"""Reference models (``aimd model zoo``): open networks built here, trained on phantoms, never downloaded.

=============  ==============================================================  ====================
name           what                                                            trained here
=============  ==============================================================  ====================
unet-b1        2-D U-Net of 000 App. B, Table B.1 (32…512 channels, 256² input)  no (description)
unet-small     the same design, 8…128 channels, 64² patches, for CPU            yes
vit-small      ViT radiograph classifier (64², patch 8, 4 × 96, 4 heads)        yes
vit-b16-512    003 §2.1.1 configuration (512², patch 16, 24 × 768, 12 heads)    no (description)
=============  ==============================================================  ====================

Each entry carries its network factory and arguments, its default input spec, the modules LoRA
targets by default (003 §3.2.1) and the text 000 §4.2.1 asks for: structure, source and the
difference from the published design.

Example
-------
>>> net = build_network("unet-small", out_channels=1)
>>> sum(p.numel() for p in net.parameters()) > 0, get_entry("vit-b16-512").kwargs["depth"]
(True, 24)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.models.specs import InputSpec, Intensity

CT_WINDOWS = Intensity(method="window", windows=((-600.0, 1500.0), (40.0, 400.0)))
CT_WIDE = Intensity(method="window", windows=((0.0, 2048.0),))
DX_BITS = Intensity(method="bit_depth")


@dataclass(frozen=True)
class ZooEntry:
    """One reference model: factory, arguments, default specs and its 000 §4.2.1 description."""

    name: str
    factory: str
    kwargs: dict[str, Any]
    task: Literal["seg", "cls"]
    input_spec: InputSpec
    default_target: str
    in_kwarg: str
    out_kwarg: str
    head_modules: tuple[str, ...]
    lora_targets: tuple[str, ...]
    structure: str
    source: str
    differences: str
    trained_here: bool
    notes: dict[str, str] = field(default_factory=dict)


_UNET_STRUCTURE = (
    "2-D U-Net encoder–decoder: an input double-convolution, five encoders (double convolution, "
    "2×2 max pooling after encoders 1–4), four 3×3 stride-2 transposed convolutions, decoders with "
    "skip connections concatenating encoder features, and a two-convolution output head. Each "
    "convolution unit is Conv2d 3×3 → ReLU → BatchNorm2d → Dropout2d (000 Table B.1)."
)
_VIT_STRUCTURE = (
    "Vision Transformer classifier: a patch-size Conv2d patch embedding (003 §2.1.1), a learned class "
    "token and position embeddings, pre-norm transformer encoder blocks (multi-head self-attention "
    "with qkv/proj Linear layers, GELU MLP, residual connections), a final LayerNorm and a Linear head "
    "on the class token."
)

ZOO: dict[str, ZooEntry] = {
    "unet-b1": ZooEntry(
        name="unet-b1",
        factory="aimd.models.networks.unet:UNetB1",
        kwargs={"features": (32, 64, 128, 256, 512), "dropout": 0.5, "head_channels": 16},
        task="seg",
        input_spec=InputSpec(modality="CT", channels=1, patch_size=(256, 256), size_multiple=16, intensity=CT_WIDE),
        default_target="body",
        in_kwarg="in_channels",
        out_kwarg="out_channels",
        head_modules=("output.2",),
        lora_targets=("decoder*.conv.*.0", "output.0"),
        structure=_UNET_STRUCTURE,
        source="U-Net (Ronneberger et al., 2015) as configured in 000 App. B, Table B.1; plain PyTorch in "
        "aimd.models.networks.unet",
        differences="none in layer order or widths; output channels follow the task (App. B: 1, body); "
        "transposed convolutions use 3×3 kernels as Table B.1 states.",
        trained_here=False,
    ),
    "unet-small": ZooEntry(
        name="unet-small",
        factory="aimd.models.networks.unet:UNetB1",
        kwargs={"features": (8, 16, 32, 64, 128), "dropout": 0.1, "head_channels": 16},
        task="seg",
        input_spec=InputSpec(modality="CT", channels=2, patch_size=(64, 64), size_multiple=16, intensity=CT_WINDOWS),
        default_target="organs",
        in_kwarg="in_channels",
        out_kwarg="out_channels",
        head_modules=("output.2",),
        lora_targets=("decoder*.conv.*.0", "output.0"),
        structure=_UNET_STRUCTURE,
        source="derived from unet-b1 (000 App. B) in aimd.models.networks.unet",
        differences="channels 8/16/32/64/128 instead of 32…512, Dropout2d 0.1 instead of 0.5, 64² patches "
        "instead of 256² images, two input channels (lung window −600/1500 and mediastinal "
        "window 40/400 HU, 003 §2.2.2) instead of one.",
        trained_here=True,
    ),
    "vit-small": ZooEntry(
        name="vit-small",
        factory="aimd.models.networks.vit:ViTClassifier",
        kwargs={"img_size": 64, "patch_size": 8, "dim": 96, "depth": 4, "heads": 4, "mlp_ratio": 4.0, "dropout": 0.1},
        task="cls",
        input_spec=InputSpec(
            modality="DX", channels=1, patch_size=(64, 64), fixed_size=True, intensity=DX_BITS, resize_to=(64, 64)
        ),
        default_target="nodule_present",
        in_kwarg="in_channels",
        out_kwarg="num_classes",
        head_modules=("head",),
        lora_targets=("blocks.*.attn.qkv", "blocks.*.attn.proj"),
        structure=_VIT_STRUCTURE,
        source="Vision Transformer (Dosovitskiy et al., 2021) with the patch embedding of 003 §2.1.1; plain "
        "PyTorch in aimd.models.networks.vit",
        differences="64² input, 8² patches (64 tokens), 4 blocks of width 96 with 4 heads instead of 003's "
        "512², 16², 24 × 768, 12 heads; single-channel radiograph input; two-class head.",
        trained_here=True,
    ),
    "vit-b16-512": ZooEntry(
        name="vit-b16-512",
        factory="aimd.models.networks.vit:ViTClassifier",
        kwargs={
            "img_size": 512,
            "patch_size": 16,
            "dim": 768,
            "depth": 24,
            "heads": 12,
            "mlp_ratio": 4.0,
            "dropout": 0.1,
        },
        task="cls",
        input_spec=InputSpec(
            modality="DX", channels=1, patch_size=(512, 512), fixed_size=True, intensity=DX_BITS, resize_to=(512, 512)
        ),
        default_target="nodule_present",
        in_kwarg="in_channels",
        out_kwarg="num_classes",
        head_modules=("head",),
        lora_targets=("blocks.*.attn.qkv", "blocks.*.attn.proj"),
        structure=_VIT_STRUCTURE,
        source="Vision Transformer configured as 003 §2.1.1 (512², patch 16, 1024 tokens, 24 layers, 768 "
        "dimensions, 12 heads, MLP 4:1); plain PyTorch in aimd.models.networks.vit",
        differences="image encoder only (no text encoder or cross-modal fusion of 003 §2.1.2); single-channel "
        "input; two-class head.",
        trained_here=False,
    ),
}


def zoo_names() -> list[str]:
    """Names of the reference models."""
    return sorted(ZOO)


def get_entry(name: str) -> ZooEntry:
    """The :class:`ZooEntry` called ``name``; unknown names raise :class:`InvalidInputError`."""
    if name not in ZOO:
        raise InvalidInputError(f"unknown model {name!r}", where="MODEL", hint=f"use one of {zoo_names()}")
    return ZOO[name]


def import_factory(path: str, *, where: str = "factory") -> Any:
    """Import ``"package.module:Name"``; errors name the path and the fix."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise InvalidInputError(
            f"import path {path!r} is not 'package.module:Name'",
            where=where,
            hint="write e.g. aimd.models.networks.unet:UNetB1",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise InvalidInputError(
            f"cannot import module {module_name!r}: {err}",
            where=where,
            hint="install the package or fix the import path",
        ) from err
    if not hasattr(module, attr):
        raise InvalidInputError(
            f"module {module_name!r} has no {attr!r}", where=where, hint="fix the class name in the import path"
        )
    return getattr(module, attr)


def build_network(
    name: str, *, in_channels: int | None = None, out_channels: int | None = None, **overrides: Any
) -> nn.Module:
    """Build the network of zoo entry ``name`` (random initial weights).

    Parameters
    ----------
    name:
        Zoo name.
    in_channels, out_channels:
        Input channels (default: the entry's input spec) and output channels / classes.
    overrides:
        Replace any of the entry's constructor arguments.

    Example
    -------
    >>> build_network("vit-small", out_channels=2).head.out_features
    2
    """
    entry = get_entry(name)
    kwargs = {**entry.kwargs, **overrides, entry.in_kwarg: in_channels or entry.input_spec.channels}
    if out_channels is not None:
        kwargs[entry.out_kwarg] = out_channels
    factory = import_factory(entry.factory)
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"cannot build {name} with {kwargs}: {err}",
            where="model_kwargs",
            hint="drop or fix the overridden arguments",
        ) from err


__all__ = [
    "CT_WIDE",
    "CT_WINDOWS",
    "DX_BITS",
    "ZOO",
    "ZooEntry",
    "build_network",
    "get_entry",
    "import_factory",
    "zoo_names",
]
