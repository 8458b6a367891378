"""000 §6.3.3 transferability: fine-tune on the downstream task and measure A.10 metrics (§5.2.3).

The pre-trained model is fine-tuned on the downstream target with every claimed method (all
weights, LoRA adapters) using the provider's settings (000 §6.3.3: "the training cases and
settings the provider supplies"; 000 B.1.6.4: typically half of the downstream training cases),
and the same architecture is trained from random weights with exactly the same settings — same
cases, steps, batch size, learning rate — as the baseline that shows what pre-training buys.
Each model is scored per held-out test case (A.10.2 b Dice, or A.10.1 accuracy) with a bootstrap
CI; the gain of each method over the baseline is the mean of the per-case paired differences,
with a paired bootstrap CI over the same cases.

The CIs cover the sampling of test cases only, not the training seed, which moves every model's
score as well; the method text states this, so a small gain is read with that in mind.

Example
-------
>>> Transferability.clause
'000 §6.3.3'
>>> paired_gain({"a": 0.6, "b": 0.7}, {"a": 0.5, "b": 0.5}, seed=0)["estimate"]
0.15
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, TransferabilityClaim
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.loading import load_eval_data
from aimd.evaluation.scoring import case_scores, metric_name, predict_labels, summarize
from aimd.evaluation.training_support import require_run, train_run
from aimd.metrics import dice

# bookkeeping of aimd's training record that does not change the trained model: the record's
# train-split benchmark is scored on one case only, to keep the whole check within about a minute
_RECORD_DEFAULTS: dict[str, Any] = {"eval_train_cases": 1}


def paired_gain(scores: dict[str, float], baseline: dict[str, float], *, seed: int, n_resamples: int = 1000
                ) -> dict[str, Any]:
    """Mean per-case difference ``scores − baseline`` over the cases both scored, with a paired bootstrap CI.

    Example
    -------
    >>> paired_gain({"a": 0.9, "b": 0.8, "c": 0.7}, {"a": 0.8, "b": 0.8, "c": 0.5}, seed=0)["n"]
    3
    """
    cases = [c for c in scores if c in baseline]
    return summarize([scores[c] - baseline[c] for c in cases], seed=seed, n_resamples=n_resamples)


def per_class_dice(labels: np.ndarray, data: EvalData, classes: dict[int, str]) -> dict[str, float]:
    """Mean over cases of each foreground class's Dice (a case with the class absent in both scores 1)."""
    owners = np.asarray(data.case_ids)
    out: dict[str, float] = {}
    for cls, name in sorted(classes.items()):
        if cls == 0 and len(classes) > 1:
            continue
        values = [float(dice(data.targets[owners == case] == cls, labels[owners == case] == cls))
                  for case in data.cases]
        out[name] = round(float(np.mean(values)), 6)
    return out


class Transferability(Characteristic):
    """000 §6.3.3 against the §5.2.3 claim."""

    key = "transferability"
    clause = "000 §6.3.3"
    requirement = "000 §5.2.3"
    title = "Transferability"
    method = ("Fine-tune the pre-trained model on the downstream target with each claimed method (full, LoRA) on "
              "the provider's training cases and settings (000 B.1.6.4: a fraction of the downstream training "
              "cases) and train the same architecture from random weights with the same cases, steps and "
              "settings; score every model per held-out test case (A.10 metric, 95 % bootstrap CI) and each "
              "method's gain over the from-scratch baseline as the mean paired per-case difference (paired "
              "bootstrap CI). The CIs cover test-case sampling, not the training seed.")
    claim_model = TransferabilityClaim

    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
        from aimd.models import load_run

        assert isinstance(claim, TransferabilityClaim)
        run_dir, data_dir, info = require_run(ctx, self.clause)
        ev = Evidence(seeds={"training": ctx.seed, "bootstrap": ctx.seed})
        variants: dict[str, dict[str, Any]] = {m: {"init": run_dir} for m in claim.methods}
        if "lora" in variants:
            variants["lora"]["lora_rank"] = claim.lora_rank
        variants["scratch"] = {}
        per_case: dict[str, dict[str, float]] = {}
        summaries: dict[str, dict[str, Any]] = {}
        classes_rows: list[dict[str, Any]] = []
        data: EvalData | None = None
        name = "metric"
        for variant, extra in variants.items():
            ctx.note(f"transferability: {variant}")
            out = ctx.evidence_dir / f"transfer_{variant}"
            started = time.perf_counter()
            settings = {**_RECORD_DEFAULTS, **claim.settings}
            summary = train_run(ctx, out, info, settings, target=claim.target, **extra)
            run = load_run(out)
            predictor = run.predictor()
            if data is None:
                data = load_eval_data(data_dir, claim.target, predictor.input_spec,
                                      task=predictor.output_spec.task)
                name = metric_name(data.task)
            labels = predict_labels(predictor, data.images)
            per_case[variant] = case_scores(labels, data)
            summaries[variant] = {**summarize(list(per_case[variant].values()), seed=ctx.seed,
                                              n_resamples=claims.bootstrap_resamples),
                                  "trainable_parameters": summary.get("trainable_parameters"),
                                  "train_cases": len(run.record.get("data", {}).get("split", {}).get("train", [])),
                                  "steps": int(sum(e.get("steps", 0) for e in run.record.get("epochs", []))),
                                  "seconds": round(time.perf_counter() - started, 2)}
            if data.task == "segmentation":
                classes_rows.append({"method": variant,
                                     **per_class_dice(labels, data, predictor.output_spec.labels)})
        assert data is not None
        gains = {m: paired_gain(per_case[m], per_case["scratch"], seed=ctx.seed,
                                n_resamples=claims.bootstrap_resamples) for m in claim.methods}
        rows: list[dict[str, Any]] = []
        for variant, s in summaries.items():
            g = gains.get(variant)
            rows.append({"method": variant, name: s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                         "gain_over_scratch": g["estimate"] if g else None,
                         "gain_ci_low": g["ci_low"] if g else None, "gain_ci_high": g["ci_high"] if g else None,
                         "test_cases": s["n"], "train_cases": s["train_cases"], "steps": s["steps"],
                         "trainable_parameters": s["trainable_parameters"], "seconds": s["seconds"]})
        ev.tables.append(Table(title=f"Downstream task '{claim.target}' (A.10), fine-tuned vs from scratch",
                                columns=list(rows[0]), rows=rows))
        if classes_rows and len(classes_rows[0]) > 2:
            ev.tables.append(Table(title=f"Per-class Dice on '{claim.target}'", columns=list(classes_rows[0]),
                                   rows=classes_rows))
        ev.plots.append(Plot(name="transfer", kind="forest", title=f"{name} after fine-tuning vs from scratch",
                             x_label=name, row_labels=[r["method"] for r in rows],
                             reference=next((f for m in claim.methods if (f := claim.metric_floor(m)) is not None),
                                            None),
                             series=[Series(name=name, x=[float(i) for i in range(len(rows))],
                                            y=[r[name] for r in rows], low=[r["ci_low"] for r in rows],
                                            high=[r["ci_high"] for r in rows])]))
        ev.measurements.update({"target": claim.target, "settings": claim.settings,
                                "scores": {v: s["estimate"] for v, s in summaries.items()},
                                "gain_over_scratch": gains, "per_case": per_case,
                                "seconds": round(sum(s["seconds"] for s in summaries.values()), 2)})
        for method in claim.methods:
            s, g = summaries[method], gains[method]
            floor = claim.metric_floor(method)
            if floor is not None:
                ev.check(f"{method} fine-tune {name}", f"≥ {floor}", s["estimate"], s["estimate"] >= floor,
                         f"95 % CI [{s['ci_low']}, {s['ci_high']}] over {s['n']} test cases")
            margin = claim.gain_floor(method)
            if margin is not None:
                ev.check(f"{method} gain over from-scratch", f"≥ {margin}", g["estimate"], g["estimate"] >= margin,
                         f"paired 95 % CI [{g['ci_low']}, {g['ci_high']}]; from scratch "
                         f"{summaries['scratch']['estimate']}")
        return ev


__all__ = ["Transferability", "paired_gain", "per_class_dice"]
