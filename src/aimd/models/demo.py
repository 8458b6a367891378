"""The model stage of ``aimd demo``: shipped reference devices, then pre-train → fine-tune → distil → export.

On a phantom dataset, with settings that finish in a few minutes on 2 CPU cores:

0. ``reference``: the shipped ``device-lesions`` and ``device-nodules`` weights (nothing trained) on
   fresh phantom cases from the sites they never saw in training, with 95 % CIs, and on the first
   test case of the demo's own dataset (lesion mask NIfTI and radiograph boxes written);
1. ``pretrain``: ``unet-small`` on the multi-organ source task (all training cases);
2. ``finetune_full``: lesion segmentation from the pre-trained weights on half of the training
   cases (000 B.1.6.4), all weights trained;
3. ``finetune_lora``: the same with LoRA adapters (rank 4) on the decoder convolutions (003 §3.2.1);
4. ``classifier``: ``vit-small`` radiograph nodule classifier (003 §2.1.1);
5. ``distil``: a narrower ViT student taught by the classifier (003 §3.3.1);
6. ``export``: ONNX fp32 + static/dynamic INT8 of the full fine-tune, with accuracy changes;
7. ``describe``: 000 §4 descriptions (Markdown, HTML, JSON) of the fine-tuned model.

Example
-------
>>> DEMO_STAGES[0], len(DEMO_STAGES)
('reference', 8)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.models.config import make_config
from aimd.models.describe import describe_model, write_description
from aimd.models.export import export_run
from aimd.models.training import train

DEMO_STAGES = ("reference", "pretrain", "finetune_full", "finetune_lora", "classifier", "distil", "export", "describe")


def run_model_demo(
    dataset_dir: str | Path,
    out_dir: str | Path,
    *,
    progress: Callable[[str], object] | None = None,
    quick: bool = False,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the model demo on ``dataset_dir`` (a phantom dataset) into ``out_dir``.

    Parameters
    ----------
    dataset_dir:
        Folder holding dataset.json (``aimd data phantom``); CT size a multiple of 16.
    out_dir:
        Folder for the runs and descriptions (must be new or empty).
    progress:
        Called with each stage name of :data:`DEMO_STAGES` when it finishes.
    quick:
        Far fewer steps (seconds instead of minutes), for tests.
    threads, seed:
        CPU threads and master seed. One thread by default: when other processes share the cores,
        multi-threaded PyTorch training slows down several-fold (OpenMP threads spin-wait).

    Returns
    -------
    dict
        Paths of every run and file, and the key numbers: loss drop, Dice, AUC, ONNX max abs diff,
        INT8 accuracy change, parameter counts, description gaps.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    data = Path(dataset_dir)
    steps = 3 if quick else 30
    epochs = 2 if quick else 5
    common: dict[str, Any] = {"data": data, "threads": threads, "seed": seed, "max_steps_per_epoch": steps}
    # downstream lesion fine-tuning: lesions are small, so fewer negative slices, Dice and focal weighted
    # equally and milder augmentation; more epochs than pre-training (all measured on phantoms)
    downstream: dict[str, Any] = {
        "task": "seg",
        "model": "unet-small",
        "target": "lesions",
        "init": out / "pretrain",
        "case_fraction": 0.5,
        "epochs": epochs * 2,
        "patience": epochs * 2,
        "negative_ratio": 0.5,
        "lambda_dice": 1.0,
        "lambda_focal": 1.0,
        "augment": ["flip", "noise"],
        **common,
    }

    def done(stage: str) -> None:
        if progress:
            progress(stage)

    reference = run_reference_stage(data, out / "reference", cases=4 if quick else 12, seed=seed)
    done("reference")
    pre = train(
        make_config(
            task="seg", model="unet-small", target="organs", out=out / "pretrain", epochs=epochs, lr=2e-3, **common
        )
    )
    done("pretrain")
    full = train(make_config(out=out / "finetune_full", lr=3e-3, **downstream))
    done("finetune_full")
    lora = train(make_config(out=out / "finetune_lora", lr=5e-3, lora_rank=4, **downstream))
    done("finetune_lora")
    cls = train(
        make_config(
            task="cls",
            model="vit-small",
            out=out / "classifier",
            epochs=epochs * 2,
            lr=5e-4,
            batch_size=8,
            augment=["flip", "noise", "shift"],
            patience=epochs * 2,
            **common,
        )
    )
    done("classifier")
    student = train(
        make_config(
            task="cls",
            model="vit-small",
            out=out / "distil",
            teacher=out / "classifier",
            model_kwargs={"dim": 48, "depth": 2, "heads": 3},
            epochs=epochs * 2,
            lr=5e-4,
            batch_size=8,
            augment=["flip", "noise", "shift"],
            patience=epochs * 2,
            **common,
        )
    )
    done("distil")
    exported = export_run(out / "finetune_full", int8=("static", "dynamic"), threads=threads)
    done("export")
    files: dict[str, str] = {}
    gaps = 0
    for fmt in ("md", "html", "json"):
        doc = describe_model(out / "finetune_full", measure=not quick, threads=threads)
        path = write_description(doc, out / f"description.{fmt}", fmt)
        files[fmt] = str(path)
        gaps = sum(1 for g in doc["gaps"] if g["required"])
    done("describe")
    runtimes = exported["runtimes"]
    return {
        "out": str(out),
        "reference": reference,
        "runs": {
            "pretrain": pre["run"],
            "finetune_full": full["run"],
            "finetune_lora": lora["run"],
            "classifier": cls["run"],
            "distil": student["run"],
        },
        "pretrain": {
            "loss_first": pre["first_train_loss"],
            "loss_last": pre["last_train_loss"],
            "val_dice": pre["val"],
            "test_dice": pre["test"],
        },
        "finetune_full": {
            "val_dice": full["val"],
            "test_dice": full["test"],
            "trainable_parameters": full["trainable_parameters"],
        },
        "finetune_lora": {
            "val_dice": lora["val"],
            "test_dice": lora["test"],
            "trainable_parameters": lora["trainable_parameters"],
        },
        "classifier": {"val_auc": cls["val"], "test_auc": cls["test"]},
        "distil": {
            "val_auc": student["val"],
            "test_auc": student["test"],
            "student_parameters": student["trainable_parameters"],
        },
        "export": {
            "onnx_max_abs_diff": exported["onnx_max_abs_diff"],
            "dice": {k: v["value"] for k, v in runtimes.items()},
            "change_vs_torch_fp32": {k: v["change_vs_torch_fp32"] for k, v in runtimes.items()},
            "files": {k: str(out / "finetune_full" / v["path"]) for k, v in exported["files"].items()},
        },
        "description": {"files": files, "required_gaps": gaps},
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_reference_stage(dataset_dir: Path, out: Path, *, cases: int, seed: int) -> dict[str, Any]:
    """Evaluate the shipped reference devices and run them on the dataset's first test case."""
    import json

    from aimd.core.atomic import atomic_write_text
    from aimd.imaging.io import read_volume, write_volume
    from aimd.models.data import load_index
    from aimd.models.reference import load_reference, shipped_status
    from aimd.models.reference.shipped import evaluate_reference

    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    for name in ("device-lesions", "device-nodules"):
        status = shipped_status(name)
        if not status["trained"]:
            result[name] = {"verdict": "not evaluated", "why": "no shipped weights"}
            continue
        model = load_reference(name)
        metrics = evaluate_reference(name, model, seed=10_000 + seed, cases=cases)
        result[name] = {
            "weights_sha256": status["sha256"],
            "held_out": model_summary(name, metrics),
            "held_out_sites": metrics["sites"],
            "cases": cases,
        }
    index = load_index(dataset_dir)
    case_id = (index.split_ids("test") or [c["id"] for c in index.data["cases"]])[0]
    if "weights_sha256" in result.get("device-lesions", {}):
        ct_path, _ = index.file(case_id, "ct.nii.gz")
        pred = load_reference("device-lesions").predict_volume(read_volume(ct_path), modality="CT", where=str(ct_path))
        assert pred.labels is not None
        mask = out / f"{case_id}_lesions.nii.gz"
        write_volume(pred.labels, mask, overwrite=True)
        result["device-lesions"]["case"] = {"id": case_id, "mask": str(mask), "lesions": pred.record["lesions"]}
    if "weights_sha256" in result.get("device-nodules", {}):
        dx_path, _ = index.file(case_id, "dx.dcm")
        found = load_reference("device-nodules").detect(read_volume(dx_path), modality="DX", where=str(dx_path))[0]
        boxes = out / f"{case_id}_dx_detections.json"
        atomic_write_text(boxes, json.dumps({"case_id": case_id, "detections": found}, indent=2))
        result["device-nodules"]["case"] = {"id": case_id, "detections": str(boxes), "found": len(found)}
    return result


def model_summary(name: str, metrics: dict[str, Any]) -> dict[str, Any]:
    """The recipe's headline numbers of ``metrics``."""
    import importlib

    from aimd.models.reference import get_recipe

    return dict(importlib.import_module(get_recipe(name).module).SUMMARY(metrics))


__all__ = ["DEMO_STAGES", "run_model_demo", "run_reference_stage"]
