"""000 §5.2.9 a differential privacy: DP-SGD fine-tuning of a copy of the model with opacus.

000 §5.2.9 a names differential privacy as a measure against training-data leakage; 000 §6.3.9
checks the measure. :func:`dp_finetune` trains a copy of the network with DP-SGD (opacus
``PrivacyEngine``: Poisson-sampled batches, per-sample gradients clipped to ``max_grad_norm``,
Gaussian noise of ``noise_multiplier · max_grad_norm``) on the given training images, and reports
the privacy spent from opacus' RDP accountant as ε at the claimed δ.

The per-sample loss is :class:`~aimd.evaluation.support.pixel_loss.PixelLoss` (per-pixel cross-entropy
averaged per image), which decomposes over samples as DP-SGD requires; a batch-level Dice loss
would couple the samples of a batch. BatchNorm mixes the samples of a batch, so opacus refuses it:
``batchnorm="freeze"`` keeps every BatchNorm layer in eval mode with its pre-trained statistics
and no trainable parameters (a fixed per-channel affine map, no statistic updated from the private
data), ``batchnorm="group_norm"`` replaces it by GroupNorm through opacus' ``ModuleValidator.fix``
(new, trainable normalisation; the pre-trained statistics are lost).

The ε covers the DP-SGD updates only: a copy that starts from the model's weights inherits
whatever those weights learnt without DP; ``from_scratch=True`` re-initialises the copy so the ε
covers every update the copy received.

Example
-------
>>> freeze_batchnorm(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)))
1
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.evaluation.context import EvalData
from aimd.evaluation.support.pixel_loss import PixelLoss, flat_targets


class DPClaim(BaseModel):
    """000 §5.2.9 a: DP-SGD (opacus) fine-tuning of a copy of the model on the training images."""

    model_config = ConfigDict(extra="forbid")

    epsilon_target: float | None = Field(
        8.0,
        gt=0,
        description="ε the DP fine-tune may spend at delta (checked); sets the noise when noise_multiplier is null",
    )
    delta: float = Field(1e-5, gt=0, lt=1, description="δ of the (ε, δ) guarantee")
    noise_multiplier: float | None = Field(
        None,
        ge=0,
        description="Gaussian noise std / max_grad_norm (null: the smallest noise that keeps ε within epsilon_target)",
    )
    max_grad_norm: float = Field(1.0, gt=0, description="per-sample gradient clipping bound")
    epochs: int = Field(2, ge=1, le=1000)
    batch_size: int = Field(16, ge=1, description="expected batch size (Poisson sampling)")
    lr: float = Field(0.01, gt=0, description="SGD learning rate")
    batchnorm: Literal["freeze", "group_norm"] = Field(
        "freeze", description="freeze: BatchNorm kept in eval mode, not trained; group_norm: replaced (opacus fix)"
    )
    from_scratch: bool = Field(False, description="re-initialise the copy, so ε covers every weight update")
    max_utility_drop: float | None = Field(None, ge=0, description="allowed A.10 metric drop of the DP model")

    @model_validator(mode="after")
    def _noise_or_target(self) -> DPClaim:
        if self.noise_multiplier is None and self.epsilon_target is None:
            raise ValueError("give noise_multiplier or epsilon_target (the noise is then derived from it)")
        return self


ACCOUNTANT = "rdp"
_BN = nn.modules.batchnorm._BatchNorm


def freeze_batchnorm(network: nn.Module) -> int:
    """Put every BatchNorm layer of ``network`` in eval mode with frozen parameters; return how many.

    Call it after ``network.train()``: a frozen layer normalises with its stored statistics, so
    one sample's output never depends on the others in its batch.
    """
    count = 0
    for module in network.modules():
        if isinstance(module, _BN):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)
            count += 1
    return count


def _batchnorm_eval(network: nn.Module) -> None:
    for module in network.modules():
        if isinstance(module, _BN):
            module.eval()


@dataclass
class DPResult:
    """A DP-SGD fine-tuned copy and its privacy accounting."""

    network: nn.Module
    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    epochs: int
    batchnorm: str
    batchnorm_layers: int
    from_scratch: bool
    history: list[tuple[float, float, int]] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready accounting and settings (without the network)."""
        finite = bool(np.isfinite(self.epsilon))
        return {
            "epsilon": self.epsilon if finite else None,
            "guarantee": "(ε, δ)-DP" if finite else "none: without noise DP-SGD gives no privacy bound",
            "delta": self.delta,
            "accountant": f"opacus {ACCOUNTANT.upper()}",
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
            "epochs": self.epochs,
            "accountant_history": [list(h) for h in self.history],
            "epoch_losses": self.epoch_losses,
            "batchnorm": self.batchnorm,
            "batchnorm_layers": self.batchnorm_layers,
            "from_scratch": self.from_scratch,
            "epsilon_covers": (
                "every update of the re-initialised copy"
                if self.from_scratch
                else "the DP-SGD fine-tune only; the starting weights were trained without DP"
            ),
            "seconds": self.seconds,
        }


def _opacus() -> Any:
    try:
        import opacus
    except ImportError as err:
        raise InvalidInputError(
            "the privacy claim asks for DP-SGD fine-tuning, which needs opacus",
            where="privacy.dp",
            hint="pip install opacus==1.6.0, or remove privacy.dp",
        ) from err
    return opacus


def _prepare(network: nn.Module, claim: DPClaim, seed: int) -> tuple[nn.Module, int]:
    from opacus.validators import ModuleValidator

    model = copy.deepcopy(network).cpu()
    if claim.from_scratch:
        torch.manual_seed(seed)
        for module in model.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
    for module in model.modules():
        if isinstance(module, nn.ReLU | nn.LeakyReLU | nn.ELU | nn.Hardtanh):
            module.inplace = False  # opacus' backward hooks need the layer outputs left unmodified
    layers = sum(isinstance(m, _BN) for m in model.modules())
    model.train()
    if claim.batchnorm == "group_norm":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ModuleValidator.fix(model)
        model.train()
    else:
        freeze_batchnorm(model)
    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise InvalidInputError(
            f"the model cannot be trained with DP-SGD: {errors[0]}",
            where="privacy.dp",
            hint="use batchnorm: freeze or group_norm, or a model of standard layers",
        )
    return model, layers


def dp_finetune(
    network: nn.Module, data: EvalData, *, channels: int, activation: str, claim: DPClaim, seed: int = 0
) -> DPResult:
    """DP-SGD fine-tune a copy of ``network`` on ``data`` (the original is left untouched).

    Parameters
    ----------
    network:
        The model's torch module (logits ``(n, channels, h, w)``).
    data:
        Training images and their reference labels (the private data).
    channels, activation:
        The model's output channels and activation (``sigmoid`` / ``softmax``).
    claim:
        Noise (or target ε), δ, clipping bound, epochs, batch size, learning rate, BatchNorm handling.
    seed:
        Seeds the batch sampling, the noise and (``from_scratch``) the initialisation.

    Returns
    -------
    DPResult
        The copy in eval mode, ε spent at ``claim.delta`` and the accounting inputs.

    Example
    -------
    >>> from aimd.evaluation.context import EvalData
    >>> d = EvalData(np.random.default_rng(0).random((8, 1, 8, 8), dtype=np.float32),
    ...              np.zeros((8, 8, 8), np.int64), [f"c{i}" for i in range(8)], {}, "segmentation")
    >>> res = dp_finetune(torch.nn.Conv2d(1, 1, 3, padding=1), d, channels=1, activation="sigmoid",
    ...                   claim=DPClaim(noise_multiplier=1.0, epochs=1, batch_size=4))
    >>> res.steps, res.sample_rate, res.epsilon > 0
    (2, 0.5, True)
    """
    engine_cls = _opacus().PrivacyEngine

    if data.task != "segmentation":
        raise InvalidInputError(
            "DP fine-tuning is implemented for segmentation models",
            where="privacy.dp",
            hint="remove privacy.dp for a classification model",
        )
    started = time.perf_counter()
    model, layers = _prepare(network, claim, seed)
    n = len(data)
    targets = flat_targets(data.targets, channels, activation)
    dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(np.ascontiguousarray(data.images, np.float32)), torch.from_numpy(targets)
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(claim.batch_size, n), generator=torch.Generator().manual_seed(seed)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError(
            "the model has no trainable parameter left for DP-SGD",
            where="privacy.dp",
            hint="use batchnorm: group_norm or a model with convolution weights",
        )
    optimizer = torch.optim.SGD(params, lr=claim.lr)
    common: dict[str, Any] = {
        "module": model,
        "optimizer": optimizer,
        "data_loader": loader,
        "max_grad_norm": claim.max_grad_norm,
        "poisson_sampling": True,
        "noise_generator": torch.Generator().manual_seed(seed + 1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # opacus: seeded (non-secure) RNG, hook notes
        engine = engine_cls(accountant=ACCOUNTANT, secure_mode=False)
        if claim.noise_multiplier is None:
            assert claim.epsilon_target is not None
            private, dp_opt, dp_loader = engine.make_private_with_epsilon(
                target_epsilon=claim.epsilon_target, target_delta=claim.delta, epochs=claim.epochs, **common
            )
        else:
            private, dp_opt, dp_loader = engine.make_private(noise_multiplier=claim.noise_multiplier, **common)
        loss_fn = PixelLoss(channels, activation)
        loss_fn.reduction = "none"
        epoch_losses: list[float] = []
        for _epoch in range(claim.epochs):
            private.train()
            if claim.batchnorm == "freeze":
                _batchnorm_eval(private)
            total, seen = 0.0, 0
            for x, y in dp_loader:
                dp_opt.zero_grad(set_to_none=True)
                per_image = loss_fn(private(x), y)
                # the mean over a Poisson batch; an empty batch still takes its (noise-only) step
                (per_image.sum() / max(len(x), 1)).backward()
                dp_opt.step()
                total += float(per_image.detach().sum())
                seen += len(x)
            epoch_losses.append(round(total / max(seen, 1), 6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # σ = 0 (infinite bound), optimal RDP order at the grid's edge
        epsilon = float(engine.get_epsilon(claim.delta))
    epsilon = round(epsilon, 6) if np.isfinite(epsilon) else float("inf")
    history = [(float(s), float(q), int(k)) for s, q, k in engine.accountant.history]
    trained = private.to_standard_module().eval()
    return DPResult(
        network=trained,
        epsilon=epsilon,
        delta=claim.delta,
        noise_multiplier=float(dp_opt.noise_multiplier),
        max_grad_norm=claim.max_grad_norm,
        sample_rate=float(history[-1][1]) if history else 1.0 / len(loader),
        steps=sum(h[2] for h in history),
        epochs=claim.epochs,
        batchnorm=claim.batchnorm,
        batchnorm_layers=layers,
        from_scratch=claim.from_scratch,
        history=history,
        epoch_losses=epoch_losses,
        seconds=round(time.perf_counter() - started, 3),
    )


__all__ = ["ACCOUNTANT", "DPClaim", "DPResult", "dp_finetune", "freeze_batchnorm"]
