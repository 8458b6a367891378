"""Training losses (003 §3.2.2): focal, Dice and their weighted sum, from MONAI; cross-entropy.

:class:`TaskLoss` takes logits and class-index targets for either task and activation, so the
training loop does not care whether a model ends in a sigmoid or a softmax:

* segmentation: logits ``(n, c, h, w)``, targets ``(n, h, w)``;
* classification: logits ``(n, c)``, targets ``(n,)`` (a dummy spatial axis is added for MONAI).

``dice_focal`` is ``lambda_dice · Dice + lambda_focal · Focal`` (003 §3.2.2 weights its focal and
Dice terms 0.6 / 0.4). Dice is computed over the whole batch (``batch=True``) so slices without
foreground do not dominate.

Example
-------
>>> import torch
>>> loss = TaskLoss("dice_focal", "sigmoid", lambda_dice=0.4, lambda_focal=0.6)
>>> float(loss(torch.zeros(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))) > 0
True
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from aimd.core.errors import InvalidInputError

LOSSES = ("focal", "dice", "dice_focal", "ce")


class TaskLoss(nn.Module):
    """Focal / Dice / Dice+Focal / cross-entropy on logits and class-index targets.

    Parameters
    ----------
    kind:
        ``focal``, ``dice``, ``dice_focal`` or ``ce``.
    activation:
        ``sigmoid`` (one output channel, binary target) or ``softmax`` (one channel per class).
    lambda_dice, lambda_focal:
        Weights of the two terms of ``dice_focal``.
    gamma, alpha:
        Focal-loss focusing parameter and positive-class weight (003 §3.2.2: γ = 2, α = 0.75).
    """

    def __init__(
        self,
        kind: str,
        activation: Literal["sigmoid", "softmax"],
        *,
        lambda_dice: float = 1.0,
        lambda_focal: float = 1.0,
        gamma: float = 2.0,
        alpha: float | None = None,
    ) -> None:
        from monai.losses import DiceLoss, FocalLoss  # monai's import is heavy: load on first use

        super().__init__()
        if kind not in LOSSES:
            raise InvalidInputError(f"unknown loss {kind!r}", where="--loss", hint=f"use one of {list(LOSSES)}")
        if lambda_dice < 0 or lambda_focal < 0:
            raise InvalidInputError(
                f"loss weights must be >= 0, got dice={lambda_dice}, focal={lambda_focal}",
                where="--lambda-dice/--lambda-focal",
                hint="use e.g. 0.4 and 0.6",
            )
        self.kind = kind
        self.activation = activation
        self.lambda_dice = lambda_dice
        self.lambda_focal = lambda_focal
        self.gamma = gamma
        self.alpha = alpha
        softmax = activation == "softmax"
        self.dice = DiceLoss(sigmoid=not softmax, softmax=softmax, to_onehot_y=softmax, batch=True)
        self.focal = FocalLoss(gamma=gamma, alpha=alpha, to_onehot_y=softmax, use_softmax=softmax)

    def _target(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.activation == "softmax":
            return target.unsqueeze(1).long()
        return (target.unsqueeze(1) > 0).to(logits.dtype)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.ndim == 2:
            logits = logits.unsqueeze(-1)
            target = target.unsqueeze(-1)
        if self.kind == "ce":
            if self.activation == "softmax":
                return F.cross_entropy(logits, target.long())
            return F.binary_cross_entropy_with_logits(logits, self._target(logits, target))
        tgt = self._target(logits, target)
        if self.kind == "dice":
            return self.dice(logits, tgt)
        if self.kind == "focal":
            return self.focal(logits, tgt)
        return self.lambda_dice * self.dice(logits, tgt) + self.lambda_focal * self.focal(logits, tgt)

    def config(self) -> dict[str, object]:
        """Settings for the training record."""
        return {
            "kind": self.kind,
            "activation": self.activation,
            "lambda_dice": self.lambda_dice,
            "lambda_focal": self.lambda_focal,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "implementation": "monai.losses.DiceLoss/FocalLoss (batch Dice)",
        }


__all__ = ["LOSSES", "TaskLoss"]
