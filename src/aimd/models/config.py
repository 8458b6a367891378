"""Training settings (000 §4.4.2, 003 §3.2): one validated object, recorded verbatim in the run.

Example
-------
>>> cfg = TrainConfig(task="seg", model="unet-small", data="ph", out="run")
>>> cfg.resolved_target(), cfg.resolved_loss()
('organs', 'dice_focal')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aimd.core.errors import InvalidInputError
from aimd.models.targets import get_target
from aimd.models.zoo import get_entry


class TrainConfig(BaseModel):
    """Everything one training run needs; defaults give a short CPU run.

    Source-task pre-training is a run without ``init``; downstream fine-tuning sets ``init`` to a
    run folder or a weights file, optionally with ``lora_rank`` (LoRA instead of full fine-tuning)
    and ``case_fraction`` (000 B.1.6.4: half the data); distillation sets ``teacher``.
    """

    model_config = ConfigDict(extra="forbid")

    task: Literal["seg", "cls"]
    model: str
    data: Path
    out: Path
    target: str | None = None
    init: Path | None = None
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    lora_rank: int | None = Field(None, ge=1)
    lora_alpha: float | None = Field(None, gt=0)
    lora_targets: list[str] | None = None
    teacher: Path | None = None
    temperature: float = Field(4.0, gt=0)
    distill_alpha: float = Field(0.7, ge=0, le=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(16, ge=1)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    schedule: Literal["cosine_restarts", "step", "none"] = "cosine_restarts"
    step_size: int = Field(20, ge=1)
    step_gamma: float = Field(0.9, gt=0, le=1)
    t0: int = Field(10, ge=1)
    t_mult: int = Field(2, ge=1)
    loss: Literal["focal", "dice", "dice_focal", "ce"] | None = None
    lambda_dice: float = Field(0.4, ge=0)
    lambda_focal: float = Field(0.6, ge=0)
    focal_gamma: float = Field(2.0, ge=0)
    focal_alpha: float | None = Field(None, ge=0, le=1)
    patience: int = Field(5, ge=1)
    min_delta: float = Field(1e-4, ge=0)
    augment: list[str] = Field(default_factory=lambda: ["flip", "noise", "shift", "elastic"])
    augment_p: float = Field(0.5, ge=0, le=1)
    case_fraction: float = Field(1.0, gt=0, le=1)
    slice_policy: Literal["auto", "all", "balanced"] = "auto"
    negative_ratio: float = Field(1.0, gt=0)
    max_steps_per_epoch: int | None = Field(None, ge=1)
    eval_train_cases: int = Field(8, ge=1)
    seed: int = 0
    threads: int = Field(2, ge=1)
    deterministic: bool = True
    version: str = "0.1.0"
    force: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        entry = get_entry(self.model)
        if entry.task != self.task:
            raise ValueError(f"model {self.model} is a {entry.task} model, not {self.task}")
        target = get_target(self.resolved_target())
        if target.task != self.task:
            raise ValueError(f"target {target.name} is a {target.task} target, not {self.task}")
        if self.lora_rank is not None and self.init is None:
            raise ValueError("LoRA fine-tunes a trained model: pass init (a run folder or weights)")
        return self

    def resolved_target(self) -> str:
        """The target, defaulting to the zoo model's."""
        return self.target or get_entry(self.model).default_target

    def resolved_loss(self) -> str:
        """The loss, defaulting to Dice+focal for segmentation and focal for classification (003 §3.2.2)."""
        return self.loss or ("dice_focal" if self.task == "seg" else "focal")

    def resolved_slice_policy(self) -> str:
        """``balanced`` for sigmoid (single-structure, often small) targets, else ``all``."""
        if self.slice_policy != "auto":
            return self.slice_policy
        return "balanced" if get_target(self.resolved_target()).activation == "sigmoid" else "all"


def make_config(**kwargs: Any) -> TrainConfig:
    """Build a :class:`TrainConfig`, turning validation errors into :class:`InvalidInputError`.

    Example
    -------
    >>> try:
    ...     make_config(task="cls", model="unet-small", data="d", out="o")
    ... except InvalidInputError as err:
    ...     print(err.message)
    model unet-small is a seg model, not cls
    """
    try:
        return TrainConfig(**kwargs)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "config"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInputError(message, where=field, hint="see aimd model train --help") from err


__all__ = ["TrainConfig", "make_config"]
