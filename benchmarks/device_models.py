"""Benchmark: the shipped reference devices against the previous reference models, on unseen sites.

One run measures, on the same freshly generated phantom cases from the held-out sites
(``SITE_D``, ``SITE_F``; never used for training):

* **lesions** — ``device-lesions`` (shipped 3-D U-Net, lesion-wise post-processing) and the previous
  reference, the 2-D ``unet-small`` fine-tuned on lesions from a multi-organ pre-training with the
  demo's settings (trained here on a phantom dataset of sites A–C). Both go through the same
  lesion-wise post-processing and metrics: per-case voxel Dice, lesion sensitivity (≥ 5 mm) and FPs
  per case at the operating point, FROC sensitivity at 1 FP per case, each with a 95 % bootstrap CI.
  The shipped device runs at the operating point of its run record (chosen on a validation set of the
  training sites, never on these cases); the previous model, which has none, at the fallback 0.5 / 15 mm³.
* **nodules** — ``device-nodules`` (shipped centre-point detector) and the previous reference, the
  ``vit-small`` radiograph classifier with the demo's settings: FROC sensitivity at 1 FP per image
  (the classifier has no boxes: "not evaluated"), image-level AUC, sensitivity and specificity.

Targets of the reference-device issue (never lowered): lesion Dice ≥ 0.70; lesion sensitivity ≥ 0.90
at ≤ 1 FP per case for lesions ≥ 5 mm; DX FROC sensitivity ≥ 0.85 at 1 FP per image; image AUC ≥ 0.90.
Each is reported as met / not met on the point estimate, with its CI beside it. The shipped
records' training times (wall and CPU seconds, load average at the start) are printed too.

Usage: ``python benchmarks/device_models.py [--cases 60] [--seed 2024] [--skip-previous] [--work DIR] [--json]``
(``--work DIR --prepare-previous`` trains the previous models ahead; a later run with the same ``--work`` reuses them.)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from aimd.metrics.classification import binary_metrics, roc_curve
from aimd.metrics.statistics import bootstrap_ci
from aimd.models import load_reference, load_run, make_config, train
from aimd.models.reference import read_record
from aimd.models.reference.lesions import LesionSegmenter, evaluate_lesions
from aimd.models.reference.lesions import summary as lesion_summary
from aimd.models.reference.nodules import dx_volume, evaluate_nodules
from aimd.models.reference.nodules import summary as nodule_summary
from aimd.models.reference.phantomdata import HELD_OUT_SITES, build_cases
from aimd.phantoms import generate_dataset

TARGETS = {
    "lesions": {"dice": 0.70, "sensitivity_5mm": 0.90, "fp_per_case": 1.0},
    "nodules": {"froc_sensitivity_at_1fp": 0.85, "image_auc": 0.90},
}


class SliceModelAsLesionSegmenter(LesionSegmenter):
    """The previous 2-D slice-wise lesion model behind the same lesion-wise post-processing."""

    def __init__(self, run_dir: Path) -> None:
        self.run = load_run(run_dir)
        self.slice_predictor = self.run.predictor()
        super().__init__(self.run.build_network(), metadata={"model": "unet-small lesions (previous)"})

    def probability_map(
        self, volume: Any, *, modality: str | None = None, where: str = "input", overlap: float = 0.5
    ) -> np.ndarray:
        pred = self.slice_predictor.predict_volume(volume, modality=modality, where=where)
        probs = pred.probabilities
        return probs[:, 0] if probs.shape[1] == 1 else 1.0 - probs[:, 0]


def previous_models(work: Path, seed: int) -> dict[str, Path]:
    """Train the previous reference models with the demo's settings on a 3-site phantom dataset.

    Runs already in ``work`` (from an earlier ``--work`` run with the same seed) are reused.
    """
    data = work / "data"
    if not (data / "dataset.json").is_file():
        generate_dataset(data, cases=60, seed=seed, size=64, sites=3, force=True)
    common: dict[str, Any] = {"data": data, "threads": 1, "seed": seed, "max_steps_per_epoch": 30}
    jobs = {
        "pretrain": {"task": "seg", "model": "unet-small", "target": "organs", "epochs": 5, "lr": 2e-3},
        "lesions": {
            "task": "seg",
            "model": "unet-small",
            "target": "lesions",
            "init": work / "pretrain",
            "case_fraction": 0.5,
            "epochs": 10,
            "patience": 10,
            "negative_ratio": 0.5,
            "lambda_dice": 1.0,
            "lambda_focal": 1.0,
            "augment": ["flip", "noise"],
            "lr": 3e-3,
        },
        "classifier": {
            "task": "cls",
            "model": "vit-small",
            "epochs": 10,
            "lr": 5e-4,
            "batch_size": 8,
            "augment": ["flip", "noise", "shift"],
            "patience": 10,
        },
    }
    for name, settings in jobs.items():
        if not (work / name / "run.json").is_file():
            train(make_config(out=work / name, force=True, **settings, **common))
    return {"lesions": work / "lesions", "classifier": work / "classifier"}


def classifier_metrics(run_dir: Path, cases: list[Any], seed: int) -> dict[str, Any]:
    """Image-level AUC / sensitivity / specificity of the previous ViT classifier (no boxes: no FROC)."""
    predictor = load_run(run_dir).predictor()
    truth, scores = [], []
    for case in cases:
        vol = dx_volume(case)
        pred = predictor.predict_volume(vol)
        assert pred.scores is not None
        scores.append(float(pred.scores[0]))
        truth.append(any(le.organ == "lung" for le in case.lesions))
    t, s = np.array(truth), np.array(scores)
    auc = bootstrap_ci(
        (t.astype(np.int64), s),
        lambda a, b: roc_curve(a.astype(bool), b).auc if 0 < a.sum() < len(a) else float("nan"),
        seed=seed,
        method="percentile",
    )
    counts = binary_metrics(t, s >= 0.5)
    return {
        "froc_sensitivity_at_1fp": {"estimate": None, "note": "not evaluated: the classifier gives no boxes"},
        "image_auc": {"estimate": auc.estimate, "ci_low": auc.low, "ci_high": auc.high, "n": len(cases)},
        "image_sensitivity": {"estimate": counts.sensitivity},
        "image_specificity": {"estimate": counts.specificity},
    }


def verdicts(kind: str, summary: dict[str, Any]) -> dict[str, str]:
    """met / not met per target on the point estimate (FP per case: at most the target)."""
    out = {}
    for key, target in TARGETS[kind].items():
        value = (summary.get(key) or {}).get("estimate")
        if value is None:
            out[key] = "not evaluated"
        elif key.startswith("fp_"):
            out[key] = "met" if value <= target else "not met"
        else:
            out[key] = "met" if value >= target else "not met"
    return out


def _fmt(v: dict[str, Any] | None) -> str:
    if not v or v.get("estimate") is None:
        return "not evaluated"
    if v.get("ci_low") is None:
        return f"{v['estimate']:.3f}"
    return f"{v['estimate']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="held-out phantom cases")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the held-out set and the previous models")
    parser.add_argument("--skip-previous", action="store_true", help="only the shipped reference devices")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="folder keeping the previous models' runs between invocations (default: temporary)",
    )
    parser.add_argument("--prepare-previous", action="store_true", help="only train the previous models into --work")
    args = parser.parse_args()

    if args.prepare_previous:
        if args.work is None:
            parser.error("--prepare-previous needs --work")
        args.work.mkdir(parents=True, exist_ok=True)
        previous_models(args.work, args.seed)
        return
    load_before = os.getloadavg()[0]
    held = build_cases(seed=args.seed, count=args.cases, size=64, sites=HELD_OUT_SITES)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "cases": args.cases,
        "sites": list(HELD_OUT_SITES),
        "seed": args.seed,
        "targets": TARGETS,
    }
    lesion_eval = evaluate_lesions(load_reference("device-lesions"), held, seed=args.seed)
    lesion_now = lesion_summary(lesion_eval)
    nodule_now = nodule_summary(evaluate_nodules(load_reference("device-nodules"), held, seed=args.seed))
    result["device-lesions"] = {
        "metrics": lesion_now,
        "targets": verdicts("lesions", lesion_now),
        "operating_point": f"{lesion_eval['operating_point']} ({lesion_eval['operating_point_source']})",
        "froc": lesion_eval["froc"]["sensitivity_at"],
    }
    result["device-nodules"] = {"metrics": nodule_now, "targets": verdicts("nodules", nodule_now)}
    for name in ("device-lesions", "device-nodules"):
        record = read_record(name)
        result[name]["training"] = {
            **record["training"]["training"],
            "load_average_at_start": record["machine"].get("load_average_1min"),
            "threads": record["recipe"]["threads"],
            "steps": record["recipe"]["steps"],
        }
    if not args.skip_previous:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.work or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            runs = previous_models(work, args.seed)
            trained = round(time.perf_counter() - t0, 1)
            old_eval = evaluate_lesions(SliceModelAsLesionSegmenter(runs["lesions"]), held, seed=args.seed)
            old_lesions = lesion_summary(old_eval)
            old_cls = classifier_metrics(runs["classifier"], held, args.seed)
        result["previous-unet-small-lesions"] = {
            "metrics": old_lesions,
            "targets": verdicts("lesions", old_lesions),
            "operating_point": f"{old_eval['operating_point']} ({old_eval['operating_point_source']})",
            "froc": old_eval["froc"]["sensitivity_at"],
            "training_wall_seconds_all_previous": trained,
        }
        result["previous-vit-small-classifier"] = {"metrics": old_cls, "targets": verdicts("nodules", old_cls)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["load_average"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"held-out sites {', '.join(HELD_OUT_SITES)}, {args.cases} fresh cases (seed {args.seed}); "
        f"load average {result['load_average']['before']} → {result['load_average']['after']}"
    )
    for name in ("device-lesions", "previous-unet-small-lesions", "device-nodules", "previous-vit-small-classifier"):
        if name not in result:
            continue
        print(f"\n{name}")
        if "operating_point" in result[name]:
            print(f"  operating point: {result[name]['operating_point']}")
        for key, value in result[name]["metrics"].items():
            mark = result[name]["targets"].get(key)
            print(f"  {key:26s} {_fmt(value):32s} {'' if mark is None else 'target ' + mark}")
        if "froc" in result[name]:
            print(
                "  FROC sensitivity at FPs/case " + ", ".join(f"{r}: {v:.3f}" for r, v in result[name]["froc"].items())
            )
        if "training" in result[name]:
            t = result[name]["training"]
            print(
                f"  training: {t['wall_seconds']:.0f} s wall, {t['cpu_seconds']:.0f} s CPU, {t['steps']} steps, "
                f"{t['threads']} thread(s), load average at start {t['load_average_at_start']}"
            )
    print(f"\n{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
