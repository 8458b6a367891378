"""What a site's client does with its own data: describe it, train on it, score on it.

Everything here runs inside the site's client (a Ray worker process in Flower's simulation); the
server only ever sees what these functions return: the site's dataset hash and case counts,
parameters, losses and scores.

Local training is the reference recipe's step (:class:`~aimd.models.losses.TaskLoss` Dice+focal,
AdamW, random patch crops) run for ``steps`` mini-batches from the global weights. With
``dp_noise`` set, the client trains with DP-SGD instead (opacus ``PrivacyEngine``: per-sample
gradients clipped to ``dp_clip`` and Gaussian noise ``dp_noise · dp_clip``, Poisson batches, BatchNorm
frozen at the global statistics because it would mix the samples of a batch) and reports the ε its
updates spent at δ = 1e-5 (opacus' RDP accountant).

Example
-------
>>> import numpy as np
>>> out = batches(3, 2, steps=4, rng=np.random.default_rng(0))
>>> [len(b) for b in out], sorted(np.concatenate(out[:2]).tolist())  # each pass sees every item once
([2, 1, 2, 1], [0, 1, 2])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.models.data import ArraySet, load_index, load_split, split_statistics
from aimd.models.evaluate import evaluate_logits, headline
from aimd.models.losses import TaskLoss
from aimd.models.targets import get_target
from aimd.models.training import random_crop
from aimd.models.zoo import get_entry

DP_DELTA = 1e-5


def load_site(site: Path, model: str, target: str, split: str) -> tuple[ArraySet, dict[str, Any]]:
    """The ``split`` slices of ``site`` for ``model``/``target``, and the site's description.

    The description holds no image data: the dataset hash, case counts, label map, spacing and the
    split's statistics (cases, slices, sites, class fractions, spacing range).
    """
    index = load_index(site)
    spec = get_entry(model).input_spec
    policy = "balanced" if get_target(target).activation == "sigmoid" else "all"
    data = load_split(index, split, target, spec, keep_volumes=split != "train", slice_policy=policy)
    spacing = np.median(np.array(list(data.spacings.values()))[:, :2], axis=0) if data.spacings else (0.0, 0.0)
    described = {
        "format": index.data.get("format"),
        "generator": index.data.get("generator"),
        "site_profiles": [x for x in index.data.get("sites", []) if isinstance(x, dict)],
        "statistics": {split: split_statistics(data, get_target(target).classes)},
        "dataset_sha256": index.sha256,
        "sites": sorted(
            {str(s.get("site_id", s)) if isinstance(s, dict) else str(s) for s in index.data.get("sites", [])}
        ),
        "cases": {name: len(index.split_ids(name)) for name in ("train", "val", "test")},
        "label_map": index.label_map,
        "spacing_yx": [round(float(spacing[0]), 4), round(float(spacing[1]), 4)],
    }
    return data, described


def merge_statistics(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One split's statistics over several sites: counts summed, class fractions weighted by slices.

    Example
    -------
    >>> a = {"cases": 2, "items": 10, "sites": {"A": 2}, "class_fraction": {"bg": 0.9, "x": 0.1},
    ...      "class_fraction_unit": "pixels", "spacing_mm_min": [1, 1, 2], "spacing_mm_max": [1, 1, 2]}
    >>> b = {**a, "cases": 1, "items": 30, "sites": {"B": 1}, "class_fraction": {"bg": 0.5, "x": 0.5}}
    >>> m = merge_statistics([a, b])
    >>> m["cases"], m["items"], m["sites"], m["class_fraction"]
    (3, 40, {'A': 2, 'B': 1}, {'bg': 0.6, 'x': 0.4})
    """
    total = sum(p["items"] for p in parts)
    sites: dict[str, int] = {}
    for part in parts:
        for site, count in part["sites"].items():
            sites[site] = sites.get(site, 0) + count
    fractions = {
        name: round(sum(p["class_fraction"][name] * p["items"] for p in parts) / max(total, 1), 6)
        for name in parts[0]["class_fraction"]
    }
    lows = [p["spacing_mm_min"] for p in parts if p.get("spacing_mm_min")]
    highs = [p["spacing_mm_max"] for p in parts if p.get("spacing_mm_max")]
    return {
        "cases": sum(p["cases"] for p in parts),
        "items": total,
        "sites": sites,
        "class_fraction": fractions,
        "class_fraction_unit": parts[0]["class_fraction_unit"],
        "spacing_mm_min": np.min(lows, axis=0).tolist() if lows else None,
        "spacing_mm_max": np.max(highs, axis=0).tolist() if highs else None,
    }


def batches(n: int, batch_size: int, *, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``steps`` mini-batches of indices into ``n`` items, a fresh permutation per pass."""
    out: list[np.ndarray] = []
    order = rng.permutation(n)
    pos = 0
    while len(out) < steps:
        if pos >= n:
            order, pos = rng.permutation(n), 0
        out.append(order[pos : pos + batch_size])
        pos += batch_size
    return out


@dataclass(frozen=True)
class LocalPlan:
    """One round of a client's local training."""

    target: str
    patch: tuple[int, ...]
    steps: int
    lr: float
    batch_size: int
    seed: int


def local_train(network: nn.Module, data: ArraySet, plan: LocalPlan) -> dict[str, float]:
    """Train ``network`` in place for ``plan.steps`` mini-batches of ``data``; return the mean loss."""
    tgt = get_target(plan.target)
    loss_fn = TaskLoss("dice_focal" if tgt.task == "seg" else "focal", tgt.activation)
    opt = torch.optim.AdamW(network.parameters(), lr=plan.lr)
    rng = np.random.default_rng(plan.seed)
    torch.manual_seed(plan.seed)
    network.train()
    losses = []
    for idx in batches(len(data), plan.batch_size, steps=plan.steps, rng=rng):
        xb, yb = random_crop(data.images[idx], data.targets[idx], plan.patch, rng)
        logits = network(torch.from_numpy(np.ascontiguousarray(xb)))
        loss = loss_fn(logits, torch.from_numpy(np.ascontiguousarray(yb)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    network.eval()
    return {"train-loss": float(np.mean(losses))}


def _pixel_losses(logits: torch.Tensor, targets: torch.Tensor, activation: str) -> torch.Tensor:
    """Per-image mean pixel cross-entropy: decomposes over samples, as DP-SGD needs."""
    if activation == "sigmoid":
        per_pixel = nn.functional.binary_cross_entropy_with_logits(
            logits[:, 0], (targets > 0).float(), reduction="none"
        )
    else:
        per_pixel = nn.functional.cross_entropy(logits, targets, reduction="none")
    return per_pixel.flatten(1).mean(1)


def dp_local_train(
    network: nn.Module, data: ArraySet, plan: LocalPlan, *, noise: float, clip: float, rounds_so_far: int = 1
) -> tuple[nn.Module, dict[str, float]]:
    """DP-SGD (opacus) for about ``plan.steps`` Poisson batches of ``data``; return the trained copy, loss and ε.

    ε is the site's total at δ = 1e-5 after ``rounds_so_far`` rounds of the same steps (RDP composition).
    """
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    tgt = get_target(plan.target)
    for module in network.modules():
        if isinstance(module, nn.ReLU | nn.LeakyReLU | nn.ELU):
            module.inplace = False  # opacus' hooks need layer outputs left unmodified
    network.train()
    for module in network.modules():  # BatchNorm mixes a batch's samples: keep the global statistics fixed
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            for p in module.parameters():
                p.requires_grad_(False)
    errors = ModuleValidator.validate(network, strict=False)
    if errors:
        raise InvalidInputError(
            f"the model cannot be trained with DP-SGD: {errors[0]}", where="--dp-noise", hint="use unet-small"
        )
    rng = np.random.default_rng(plan.seed)
    images, targets = random_crop(data.images, data.targets, plan.patch, rng)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(targets))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(plan.batch_size, len(dataset)), generator=torch.Generator().manual_seed(plan.seed)
    )
    params = [p for p in network.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=plan.lr)
    epochs = max(1, int(np.ceil(plan.steps / len(loader))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus: seeded (non-secure) noise, hook notes
        engine = PrivacyEngine(accountant="rdp", secure_mode=False)
        private, dp_opt, dp_loader = engine.make_private(
            module=network,
            optimizer=opt,
            data_loader=loader,
            noise_multiplier=noise,
            max_grad_norm=clip,
            poisson_sampling=True,
            noise_generator=torch.Generator().manual_seed(plan.seed + 1),
        )
        losses = []
        for _ in range(epochs):
            for x, y in dp_loader:
                dp_opt.zero_grad(set_to_none=True)
                if len(x) == 0:  # an empty Poisson batch still takes its noise-only step, as the accountant counts it
                    for p in dp_opt.params:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
                    dp_opt.step()
                    continue
                per_image = _pixel_losses(private(x), y, tgt.activation)
                (per_image.sum() / len(x)).backward()
                dp_opt.step()
                losses.append(float(per_image.detach().mean()))
        # the site's data is used every round: ε covers this round's steps and every earlier round's
        from opacus.accountants import RDPAccountant

        total = RDPAccountant()
        total.history = [(noise, q, k * rounds_so_far) for noise, q, k in engine.accountant.history]
        epsilon = float(total.get_epsilon(DP_DELTA))
    trained = private.to_standard_module().eval()
    finite = [v for v in losses if np.isfinite(v)]
    return trained, {"train-loss": float(np.mean(finite)) if finite else 0.0, "dp-epsilon": epsilon}


def local_score(network: nn.Module, data: ArraySet, output_spec: Any) -> float:
    """The site's headline score (mean Dice or AUC) of ``network`` on ``data``."""
    network.eval()
    with torch.inference_mode():
        scores = evaluate_logits(lambda x: network(torch.from_numpy(x)).numpy(), data, output_spec)
    value = headline(scores)
    return float(value) if value is not None else 0.0


__all__ = [
    "DP_DELTA",
    "LocalPlan",
    "batches",
    "merge_statistics",
    "dp_local_train",
    "load_site",
    "local_score",
    "local_train",
]
