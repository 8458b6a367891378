"""Per-pixel segmentation losses for ART and DP-SGD: the network's outputs flattened as "classes".

ART's gradient attacks (000 §6.3.8), its membership-inference attack and DP-SGD (000 §5.2.9 a)
all need a per-sample loss; :class:`PixelLoss` is binary cross-entropy (sigmoid outputs) or
cross-entropy over channels (softmax), averaged per image, on flattened logits and targets
(:func:`flat_targets`). :func:`art_estimator` wraps a network for ART with it.

Example
-------
>>> import numpy as np
>>> flat_targets(np.array([[[0, 1]]]), 2, "softmax").tolist()
[[1.0, 0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class _Flat(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x).reshape(x.shape[0], -1)


class PixelLoss(nn.Module):
    """Segmentation loss on flattened logits and flattened (one-hot for softmax) targets.

    ART rescales multi-column labels to sum to one before an attack, so targets are read by sign
    (sigmoid: any positive value is foreground) or by argmax (softmax), never by magnitude.
    """

    def __init__(self, channels: int, activation: str) -> None:
        super().__init__()
        self.channels = channels
        self.activation = activation
        self.reduction = "mean"

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, target = logits.flatten(1), target.flatten(1)
        if self.activation == "sigmoid":
            per = nn.functional.binary_cross_entropy_with_logits(logits, (target > 0).float(), reduction="none")
        else:
            per = nn.functional.cross_entropy(
                logits.unflatten(1, (self.channels, -1)),
                target.unflatten(1, (self.channels, -1)).argmax(dim=1),
                reduction="none",
            )
        per_sample = per.flatten(1).mean(dim=1)  # flatten/unflatten keep an empty batch (n = 0) valid
        if self.reduction == "none":
            return per_sample
        return per_sample.sum() if self.reduction == "sum" else per_sample.mean()


def art_estimator(network: nn.Module, input_shape: tuple[int, ...], channels: int, activation: str) -> Any:
    """ART ``PyTorchClassifier`` over the flattened outputs of ``network`` with :class:`PixelLoss`."""
    from art.estimators.classification import PyTorchClassifier

    with torch.no_grad():
        flat = int(np.prod(network.eval()(torch.zeros(1, *input_shape)).shape[1:]))
    return PyTorchClassifier(
        model=_Flat(network.eval()),
        loss=PixelLoss(channels, activation),
        input_shape=tuple(input_shape),
        nb_classes=flat,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def flat_targets(targets: np.ndarray, channels: int, activation: str) -> np.ndarray:
    """Targets as the flattened layout :class:`PixelLoss` expects."""
    n = targets.shape[0]
    if activation == "sigmoid":
        return (targets > 0).reshape(n, -1).astype(np.float32)
    one_hot = np.eye(channels, dtype=np.float32)[targets.reshape(n, -1)]
    return np.ascontiguousarray(one_hot.transpose(0, 2, 1).reshape(n, -1))


__all__ = ["PixelLoss", "art_estimator", "flat_targets"]
