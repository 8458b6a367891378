"""Train, fine-tune (full or LoRA) and distil reference models on phantom data (003 §3.2, 000 §4.4).

:func:`train` runs one :class:`TrainConfig` and writes a run folder (see :mod:`aimd.models.runs`)
atomically: either the complete run appears or nothing does. It covers

* source-task pre-training from random weights and downstream fine-tuning from ``init`` (a run
  or a weights file; layers whose shape changed with the new output space are re-initialised
  and listed), full or LoRA (peft), optionally on a seeded fraction of the training cases
  (000 B.1.6.4);
* focal / Dice / weighted-sum losses (MONAI), SGD or AdamW, step or cosine-with-warm-restarts
  schedules (003 §3.2.3), early stopping on the validation metric and a best-epoch checkpoint;
* augmentation with a record of what was applied; seeds, deterministic algorithms, thread count;
* knowledge distillation from a teacher run (003 §3.3.1);
* the training record: per-epoch train/val loss, validation metric, learning rate and time,
  hardware and software, data hashes, splits with their statistics and differences, benchmark
  performance on train/val/test (000 §4.3.2, §4.3.4), and loss/metric curves as PNG.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.models.config import make_config
>>> from aimd.phantoms import generate_dataset
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = generate_dataset(tmp / "ph", cases=4, seed=0, size=32, workers=1)
>>> cfg = make_config(task="seg", model="unet-small", data=tmp / "ph", out=tmp / "run", epochs=1,
...                   max_steps_per_epoch=2, augment=[])
>>> result = train(cfg)  # doctest: +SKIP
>>> result["epochs_run"]  # doctest: +SKIP
1
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.core.ids import random_uid
from aimd.core.logging import get_logger
from aimd.models.adapters.torch_module import load_state_dict_file
from aimd.models.augment import Augmenter, build_augmentations
from aimd.models.config import TrainConfig
from aimd.models.data import (
    ArraySet,
    DatasetIndex,
    choose_cases,
    distribution_differences,
    load_index,
    load_split,
    split_statistics,
)
from aimd.models.distill import DistillationLoss
from aimd.models.evaluate import evaluate_logits, headline
from aimd.models.lora import apply_lora, lora_state, merge_lora, trainable_parameters
from aimd.models.losses import TaskLoss
from aimd.models.record import environment, plot_curves
from aimd.models.runs import RECORD_FILE, RUN_FILE, RUN_FORMAT, WEIGHTS_FILE, is_run, load_run
from aimd.models.specs import InputSpec, OutputSpec
from aimd.models.targets import get_target
from aimd.models.zoo import build_network, get_entry

_log = get_logger("aimd.models.training")


@contextmanager
def _torch_settings(threads: int, deterministic: bool, seed: int) -> Any:
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def load_init(network: nn.Module, init: Path, model_factory: str) -> dict[str, Any]:
    """Load ``init`` (a run folder or a weights file) into ``network`` where shapes agree.

    Layers whose shape differs (an output head for a new class count) keep their fresh
    initialisation and are listed; if nothing fits, the weights belong to another network.
    """
    if is_run(init):
        run = load_run(init)
        if run.info["factory"] != model_factory:
            raise InvalidInputError(
                f"init run trained {run.info['factory']}, not {model_factory}",
                where=str(init),
                hint="fine-tune the same architecture the run pre-trained",
            )
        weights, source = (
            run.weights,
            {
                "run": str(init),
                "run_id": run.info.get("run_id"),
                "model": run.info["model"],
                "target": run.output_spec.target,
            },
        )
    else:
        weights, source = init, {"weights": str(init)}
    state = load_state_dict_file(weights)
    own = network.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    if not fitting:
        raise InvalidInputError(
            "no tensor of the init weights fits this network",
            where=str(weights),
            hint="pass weights of the same architecture",
        )
    network.load_state_dict(fitting, strict=False)
    reinit = sorted(k for k in own if k not in fitting)
    return {
        **source,
        "weights_sha256": sha256_file(weights),
        "loaded_tensors": len(fitting),
        "reinitialised": reinit,
        "ignored": sorted(k for k in state if k not in fitting),
    }


def _optimizer(cfg: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer) -> Any:
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.step_gamma)
    if cfg.schedule == "cosine_restarts":
        return torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=cfg.t0, T_mult=cfg.t_mult)
    return None


def _load_data(cfg: TrainConfig, index: DatasetIndex, spec: InputSpec) -> tuple[dict[str, ArraySet], list[str]]:
    target = cfg.resolved_target()
    policy = cfg.resolved_slice_policy()
    train_ids = choose_cases(index.split_ids("train"), cfg.case_fraction, cfg.seed)
    common = {"slice_policy": policy, "negative_ratio": cfg.negative_ratio, "seed": cfg.seed}
    sets = {"train": load_split(index, "train", target, spec, case_ids=train_ids, **common)}
    for split in ("val", "test"):
        if not index.split_ids(split):
            raise InvalidInputError(
                f"dataset has no {split} cases",
                where=str(index.path),
                hint="generate at least 7 cases so every split holds one",
            )
        sets[split] = load_split(index, split, target, spec, keep_volumes=True, **common)
    return sets, train_ids


def _eval_train_subset(cfg: TrainConfig, index: DatasetIndex, spec: InputSpec, train_ids: list[str]) -> ArraySet:
    ids = train_ids[: cfg.eval_train_cases]
    return load_split(
        index,
        "train",
        cfg.resolved_target(),
        spec,
        case_ids=ids,
        keep_volumes=True,
        slice_policy=cfg.resolved_slice_policy(),
        negative_ratio=cfg.negative_ratio,
        seed=cfg.seed,
    )


def _logits_fn(model: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    return run


def _val_loss(model: nn.Module, loss_fn: nn.Module, data: ArraySet, batch: int) -> float:
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(data), batch):
            x = torch.from_numpy(data.images[i : i + batch])
            y = torch.from_numpy(data.targets[i : i + batch])
            total += float(loss_fn(model(x), y)) * len(x)
            count += len(x)
    return total / max(count, 1)


def random_crop(
    images: np.ndarray, targets: np.ndarray, patch: tuple[int, ...], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Crop each image (and its spatial target) to ``patch`` at a random position; no-op when it fits."""
    h, w = images.shape[-2:]
    ph, pw = int(patch[0]), int(patch[1])
    if h <= ph and w <= pw:
        return images, targets
    ph, pw = min(ph, h), min(pw, w)
    out_i, out_t = [], []
    spatial = targets.ndim == images.ndim - 1
    for img, tgt in zip(images, targets, strict=True):
        y0 = int(rng.integers(0, h - ph + 1))
        x0 = int(rng.integers(0, w - pw + 1))
        out_i.append(img[:, y0 : y0 + ph, x0 : x0 + pw])
        out_t.append(tgt[y0 : y0 + ph, x0 : x0 + pw] if spatial else tgt)
    return np.stack(out_i), np.stack(out_t)


def train(cfg: TrainConfig, *, progress: Callable[[int], object] | None = None) -> dict[str, Any]:
    """Run ``cfg`` and write the run folder ``cfg.out``; return a summary of the run.

    Parameters
    ----------
    cfg:
        The validated settings (:func:`aimd.models.config.make_config`).
    progress:
        Called with ``1`` after each epoch.
    """
    started = time.perf_counter()
    entry = get_entry(cfg.model)
    target = get_target(cfg.resolved_target())
    index = load_index(cfg.data)
    output_spec: OutputSpec = target.output_spec(index.label_map)
    base_spec = entry.input_spec
    with _torch_settings(cfg.threads, cfg.deterministic, cfg.seed), atomic_dir(cfg.out, overwrite=cfg.force) as tmp:
        sets, train_ids = _load_data(cfg, index, base_spec)
        spacing = np.median(np.array(list(sets["train"].spacings.values()))[:, :2], axis=0)
        input_spec = (
            base_spec
            if target.task == "cls"
            else base_spec.model_copy(update={"spacing_mm": (round(float(spacing[0]), 4), round(float(spacing[1]), 4))})
        )
        network = build_network(cfg.model, out_channels=target.channels, **cfg.model_kwargs)
        kwargs = {
            **entry.kwargs,
            **cfg.model_kwargs,
            entry.in_kwarg: base_spec.channels,
            entry.out_kwarg: target.channels,
        }
        lineage = load_init(network, cfg.init, entry.factory) if cfg.init else None
        model: Any = network
        lora_info = None
        if cfg.lora_rank:
            targets = cfg.lora_targets or list(entry.lora_targets)
            alpha = cfg.lora_alpha or 2.0 * cfg.lora_rank
            total_params = sum(p.numel() for p in network.parameters())
            model = apply_lora(network, rank=cfg.lora_rank, alpha=alpha, targets=targets, head=list(entry.head_modules))
            lora_info = {
                "rank": cfg.lora_rank,
                "alpha": alpha,
                "targets": targets,
                "head_trained_in_full": list(entry.head_modules),
                "trainable_parameters": trainable_parameters(model),
                "base_parameters": total_params,
                "library": "peft",
            }
        hard = TaskLoss(
            cfg.resolved_loss(),
            target.activation,
            lambda_dice=cfg.lambda_dice,
            lambda_focal=cfg.lambda_focal,
            gamma=cfg.focal_gamma,
            alpha=cfg.focal_alpha,
        )
        loss_fn: nn.Module = hard
        distill_info = None
        if cfg.teacher:
            teacher_run = load_run(cfg.teacher)
            if teacher_run.output_spec.labels != output_spec.labels:
                raise InvalidInputError(
                    f"teacher predicts {teacher_run.output_spec.labels}, the student {output_spec.labels}",
                    where=str(cfg.teacher),
                    hint="distil from a teacher trained on the same target",
                )
            loss_fn = DistillationLoss(
                hard, teacher_run.build_network(), temperature=cfg.temperature, alpha=cfg.distill_alpha
            )
            distill_info = {
                "teacher": str(cfg.teacher),
                "teacher_run_id": teacher_run.info.get("run_id"),
                "teacher_model": teacher_run.info["model"],
                "teacher_parameters": sum(p.numel() for p in teacher_run.build_network().parameters()),
                **loss_fn.config(),
            }
        params = [p for p in model.parameters() if p.requires_grad]
        opt = _optimizer(cfg, params)
        sched = _scheduler(cfg, opt)
        aug = Augmenter(build_augmentations(cfg.augment, segmentation=target.task == "seg"), cfg.seed)
        for t in aug.transforms:
            t.p = cfg.augment_p
        rng = np.random.default_rng(cfg.seed)
        train_set = sets["train"]
        steps = max(1, int(np.ceil(len(train_set) / cfg.batch_size)))
        if cfg.max_steps_per_epoch:
            steps = min(steps, cfg.max_steps_per_epoch)
        epochs: list[dict[str, Any]] = []
        best: dict[str, Any] = {"score": -np.inf, "epoch": None, "state": None}
        stale = 0
        stopped_early = False
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            order = rng.permutation(len(train_set))
            lr_used = opt.param_groups[0]["lr"]
            losses = []
            for step in range(steps):
                idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                if len(idx) == 0:
                    break
                xb, yb = random_crop(train_set.images[idx], train_set.targets[idx], input_spec.patch_size, rng)
                xb, yb = aug.batch(xb, yb)
                x = torch.from_numpy(np.ascontiguousarray(xb))
                y = torch.from_numpy(np.ascontiguousarray(yb))
                logits = model(x)
                loss = loss_fn(logits, y, x) if isinstance(loss_fn, DistillationLoss) else loss_fn(logits, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None and cfg.schedule == "cosine_restarts":
                    sched.step(epoch - 1 + (step + 1) / steps)
                losses.append(float(loss.detach()))
            if sched is not None and cfg.schedule == "step":
                sched.step()
            model.eval()
            val_loss = _val_loss(model, hard, sets["val"], cfg.batch_size)
            val_scores = evaluate_logits(_logits_fn(model), sets["val"], output_spec)
            score = headline(val_scores)
            monitor = score if score is not None else -val_loss
            improved = monitor > best["score"] + cfg.min_delta
            epochs.append(
                {
                    "epoch": epoch,
                    "train_loss": float(np.mean(losses)),
                    "val_loss": val_loss,
                    "val_metric": score,
                    "val_metric_name": val_scores["metric"],
                    "lr": lr_used,
                    "lr_end": opt.param_groups[0]["lr"],
                    "steps": len(losses),
                    "seconds": round(time.perf_counter() - t0, 3),
                    "improved": improved,
                }
            )
            _log.info("train.epoch", run=str(cfg.out), **{k: v for k, v in epochs[-1].items() if k != "improved"})
            if improved:
                best = {"score": monitor, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                stale = 0
            else:
                stale += 1
            if progress:
                progress(1)
            if stale >= cfg.patience:
                stopped_early = True
                break
        model.load_state_dict(best["state"])
        adapter = None
        if lora_info:
            adapter = lora_state(model)
            network = merge_lora(model)
        network.eval()
        torch.save(network.state_dict(), tmp / WEIGHTS_FILE)
        if adapter is not None:
            torch.save(adapter, tmp / "lora_adapter.pt")
        fn = _logits_fn(network)
        train_eval = _eval_train_subset(cfg, index, base_spec, train_ids)
        benchmark = {
            "train": {
                **evaluate_logits(fn, train_eval, output_spec),
                "cases_scored": sorted(train_eval.volumes) or sorted(set(train_eval.case_ids)),
            },
            "val": evaluate_logits(fn, sets["val"], output_spec),
            "test": evaluate_logits(fn, sets["test"], output_spec),
        }
        curves = plot_curves(epochs, tmp, metric_name=epochs[0]["val_metric_name"])
        run_id = random_uid()
        files: dict[str, str] = {}
        for s in sets.values():
            files.update(s.files)
        statistics = {name: split_statistics(s, target.classes) for name, s in sets.items()}
        record = {
            "run_id": run_id,
            "aimd_version": __version__,
            "epochs": epochs,
            "epochs_run": len(epochs),
            "stopped_early": stopped_early,
            "best_epoch": best["epoch"],
            "best_val_metric": headline(benchmark["val"]),
            "benchmark": benchmark,
            "learning": {
                "method": "supervised"
                + (" fine-tuning" if cfg.init else " pre-training")
                + (" with LoRA" if lora_info else "")
                + (" with knowledge distillation" if distill_info else ""),
                "initialisation": lineage or {"random": f"PyTorch default initialisation, seed {cfg.seed}"},
                "optimizer": {
                    "name": cfg.optimizer,
                    "lr": cfg.lr,
                    "weight_decay": cfg.weight_decay,
                    "momentum": cfg.momentum if cfg.optimizer == "sgd" else None,
                },
                "schedule": {
                    "name": cfg.schedule,
                    "step_size": cfg.step_size,
                    "gamma": cfg.step_gamma,
                    "t0": cfg.t0,
                    "t_mult": cfg.t_mult,
                },
                "loss": hard.config(),
                "batch_size": cfg.batch_size,
                "early_stopping": {
                    "patience": cfg.patience,
                    "min_delta": cfg.min_delta,
                    "monitor": f"validation {epochs[0]['val_metric_name']}",
                },
                "augmentation": aug.record(),
                "lora": lora_info,
                "patch": {
                    "size": list(input_spec.patch_size),
                    "random_crop": bool(
                        train_set.images.shape[-1] > input_spec.patch_size[-1]
                        or train_set.images.shape[-2] > input_spec.patch_size[0]
                    ),
                },
                "distillation": distill_info,
                "seed": cfg.seed,
                "deterministic": cfg.deterministic,
                "threads": cfg.threads,
            },
            "data": {
                "dataset": str(index.path),
                "dataset_sha256": index.sha256,
                "format": index.data.get("format"),
                "generator": index.data.get("generator"),
                "sites": index.data.get("sites", []),
                "target": target.name,
                "task_domain": target.domain,
                "modality": base_spec.modality,
                "slice_policy": cfg.resolved_slice_policy(),
                "case_fraction": cfg.case_fraction,
                "split": {name: sorted(set(s.case_ids)) for name, s in sets.items()},
                "statistics": statistics,
                "differences": distribution_differences(sets),
                "files": dict(sorted(files.items())),
                "label_map": index.label_map,
            },
            "environment": environment(),
            "seconds": round(time.perf_counter() - started, 2),
            "curves": curves,
        }
        atomic_write_json(tmp / RECORD_FILE, record)
        info = {
            "format": RUN_FORMAT,
            "version": cfg.version,
            "run_id": run_id,
            "aimd_version": __version__,
            "model": cfg.model,
            "factory": entry.factory,
            "model_kwargs": kwargs,
            "input_spec": input_spec.model_dump(mode="json"),
            "output_spec": output_spec.model_dump(mode="json"),
            "weights": WEIGHTS_FILE,
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            "parameters": sum(p.numel() for p in network.parameters()),
            "config": cfg.model_dump(mode="json"),
            "parent": lineage,
            "lora": lora_info,
            "distillation": distill_info,
            "best_epoch": best["epoch"],
            "benchmark": {k: headline(v) for k, v in benchmark.items()},
        }
        atomic_write_json(tmp / RUN_FILE, info)
    summary = {
        "run": str(cfg.out),
        "run_id": run_id,
        "model": cfg.model,
        "target": target.name,
        "epochs_run": len(epochs),
        "best_epoch": best["epoch"],
        "stopped_early": stopped_early,
        "first_train_loss": epochs[0]["train_loss"],
        "last_train_loss": epochs[-1]["train_loss"],
        "metric": epochs[0]["val_metric_name"],
        "val": headline(benchmark["val"]),
        "test": headline(benchmark["test"]),
        "trainable_parameters": (lora_info or {}).get(
            "trainable_parameters", sum(p.numel() for p in network.parameters())
        ),
        "seconds": round(time.perf_counter() - started, 2),
    }
    _log.info("train.done", **summary)
    return summary


__all__ = ["load_init", "random_crop", "train"]
