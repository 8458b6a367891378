"""Knowledge distillation (003 §2.1.3, §3.3.1): a student learns from a teacher's softened outputs.

    L = α · T² · KL(softmax(z_t / T) ‖ softmax(z_s / T)) + (1 − α) · L_hard(z_s, y)

with temperature ``T`` and weight ``α`` as 003 §3.3.1 writes it (its example: T = 5, α = 0.7).
Sigmoid outputs (one channel) are treated as the two-class logits ``(0, z)``, whose softmax is the
sigmoid, so the same formula covers binary segmentation. For segmentation the KL term is averaged
over pixels.

Example
-------
>>> import torch
>>> z = torch.tensor([[2.0, -1.0]])
>>> abs(float(soft_loss(z, z, temperature=4.0))) < 1e-6
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aimd.core.errors import InvalidInputError


def _two_class(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] == 1:
        return torch.cat([torch.zeros_like(logits), logits], dim=1)
    return logits


def soft_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """T² · KL(teacher ‖ student) of temperature-softened class distributions, mean per item/pixel."""
    s = _two_class(student) / temperature
    t = _two_class(teacher) / temperature
    log_s = F.log_softmax(s, dim=1)
    p_t = F.softmax(t, dim=1)
    kl = (p_t * (torch.log(p_t.clamp_min(1e-12)) - log_s)).sum(dim=1)
    return kl.mean() * temperature**2


class DistillationLoss(nn.Module):
    """``α · soft + (1 − α) · hard`` with a frozen teacher.

    Parameters
    ----------
    hard:
        The ordinary task loss on the labels.
    teacher:
        Trained network, kept in eval mode and never updated.
    temperature, alpha:
        003 §3.3.1's T and α.
    """

    def __init__(self, hard: nn.Module, teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.7) -> None:
        super().__init__()
        if temperature <= 0:
            raise InvalidInputError(
                f"temperature must be > 0, got {temperature}", where="--temperature", hint="use e.g. 4"
            )
        if not 0 <= alpha <= 1:
            raise InvalidInputError(f"alpha must be in [0, 1], got {alpha}", where="--alpha", hint="use e.g. 0.7")
        self.hard = hard
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature = temperature
        self.alpha = alpha

    def forward(self, student_logits: torch.Tensor, target: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        if teacher_logits.shape != student_logits.shape:
            raise InvalidInputError(
                f"teacher outputs {tuple(teacher_logits.shape)}, student {tuple(student_logits.shape)}",
                where="--teacher",
                hint="distil between models of the same task and classes",
            )
        soft = soft_loss(student_logits, teacher_logits, temperature=self.temperature)
        return self.alpha * soft + (1 - self.alpha) * self.hard(student_logits, target)

    def config(self) -> dict[str, float | str]:
        """Settings for the training record."""
        return {
            "temperature": self.temperature,
            "alpha": self.alpha,
            "formula": "alpha*T^2*KL(teacher||student) + (1-alpha)*hard (003 §3.3.1)",
        }


__all__ = ["DistillationLoss", "soft_loss"]
