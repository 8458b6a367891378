"""LoRA fine-tuning with peft (003 §3.2.1): W' = W + (α/r)·B·A on chosen Linear / Conv2d layers.

:func:`apply_lora` freezes the network, injects rank-``r`` adapters into the modules whose names
match the given glob patterns (e.g. ``blocks.*.attn.qkv`` for a ViT's QKV projections) and keeps
the task head fully trainable. :func:`merge_lora` folds the adapters back into plain weights, so
the result exports, describes and serves like any other network.

Example
-------
>>> from aimd.models.zoo import build_network
>>> net = build_network("vit-small", out_channels=2)
>>> peft_model = apply_lora(net, rank=4, alpha=8, targets=["blocks.*.attn.qkv"], head=["head"])
>>> trainable_parameters(peft_model) < sum(p.numel() for p in net.parameters())
True
"""

from __future__ import annotations

import fnmatch
from typing import Any

import torch
from torch import nn

from aimd.core.errors import InvalidInputError

_ADAPTABLE = (nn.Linear, nn.Conv2d)


def resolve_targets(model: nn.Module, patterns: list[str] | tuple[str, ...]) -> list[str]:
    """Names of the Linear / Conv2d modules matching any glob pattern; an error lists candidates."""
    candidates = [name for name, mod in model.named_modules() if isinstance(mod, _ADAPTABLE)]
    chosen = [name for name in candidates if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    if not chosen:
        raise InvalidInputError(
            f"LoRA targets {list(patterns)} match no Linear/Conv2d layer",
            where="--lora-targets",
            hint=f"use glob patterns over layer names such as {candidates[:4]}",
        )
    return chosen


def apply_lora(
    model: nn.Module,
    *,
    rank: int,
    alpha: float,
    targets: list[str] | tuple[str, ...],
    head: list[str] | tuple[str, ...] = (),
    dropout: float = 0.0,
) -> Any:
    """Wrap ``model`` in a peft LoRA model; only adapters and ``head`` modules stay trainable.

    Parameters
    ----------
    rank, alpha:
        LoRA rank ``r`` and scaling ``α`` (update scaled by α / r).
    targets:
        Glob patterns of module names to adapt.
    head:
        Module names trained in full (e.g. a re-initialised output layer).
    dropout:
        Dropout on the adapter input.
    """
    from peft import LoraConfig, get_peft_model  # peft pulls in transformers: load on first use

    if rank < 1:
        raise InvalidInputError(f"LoRA rank must be >= 1, got {rank}", where="--lora", hint="use e.g. --lora 4")
    names = resolve_targets(model, targets)
    names = [n for n in names if n not in head]
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=names,
        lora_dropout=dropout,
        modules_to_save=list(head) or None,
        bias="none",
    )
    return get_peft_model(model, config)


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def merge_lora(peft_model: Any) -> nn.Module:
    """Fold adapters into the base weights and return the plain network."""
    merged = peft_model.merge_and_unload()
    assert isinstance(merged, nn.Module)
    return merged


def lora_state(peft_model: Any) -> dict[str, torch.Tensor]:
    """The adapter (and head) weights alone, as peft saves them."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(peft_model).items()}


__all__ = ["apply_lora", "lora_state", "merge_lora", "resolve_targets", "trainable_parameters"]
