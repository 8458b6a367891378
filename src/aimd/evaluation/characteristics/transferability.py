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
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.loading import load_eval_data
from aimd.evaluation.support.scoring import case_scores, metric_name, predict_labels, summarize
from aimd.evaluation.support.stats import paired_difference
from aimd.evaluation.support.training import require_run, train_run
from aimd.metrics import dice


def per_class_dice(labels: np.ndarray, data: EvalData, classes: dict[int, str]) -> dict[str, float]:
    """Mean over cases of each foreground class's Dice (a case with the class absent in both scores 1)."""
    owners = np.asarray(data.case_ids)
    out: dict[str, float] = {}
    for cls, name in sorted(classes.items()):
        if cls == 0 and len(classes) > 1:
            continue
        values = [
            float(dice(data.targets[owners == case] == cls, labels[owners == case] == cls)) for case in data.cases
        ]
        out[name] = round(float(np.mean(values)), 6)
    return out


class TransferabilityClaim(ClaimModel):
    """000 §5.2.3 / §6.3.3, A.10: performance after fine-tuning on the downstream task.

    The defaults are the claim aimd makes for its body-outline reference model (000 B.1.5.3):
    fine-tuned on multi-organ segmentation with half of the downstream training cases (000
    B.1.6.4) for 160 steps, full fine-tuning reaches a mean Dice of at least 0.65 and is
    non-inferior to the same network trained from random weights on the same cases and steps
    (paired gain ≥ −0.02 Dice); LoRA (rank 4, under 3 % of the weights trainable) reaches at least
    0.40. ``min_metric`` and ``min_gain_over_scratch`` take one number for every method or a
    mapping method → number.

    Example
    -------
    >>> c = TransferabilityClaim(min_metric={"full": 0.7}, min_gain_over_scratch=0.0)
    >>> c.metric_floor("full"), c.metric_floor("lora"), c.gain_floor("lora")
    (0.7, None, 0.0)
    """

    target: str = Field("organs", description="downstream target (aimd.models.TARGETS)")
    settings: dict[str, Any] = Field(
        default_factory=lambda: {
            "case_fraction": 0.5,
            "epochs": 2,
            "max_steps_per_epoch": 80,
            "batch_size": 8,
            "lr": 3e-3,
            "t0": 2,
            "augment": [],
        },
        description="aimd model train settings for every fine-tune and the from-scratch baseline",
    )
    methods: list[Literal["full", "lora"]] = Field(default_factory=lambda: ["full", "lora"])
    lora_rank: int = Field(4, ge=1)
    min_metric: float | dict[Literal["full", "lora"], float] | None = Field(
        default_factory=lambda: {"full": 0.65, "lora": 0.4},
        description="A.10 metric after fine-tuning: one value for every method or method → value",
    )
    min_gain_over_scratch: float | dict[Literal["full", "lora"], float] | None = Field(
        default_factory=lambda: {"full": -0.02},
        description="fine-tuned minus from-scratch metric (mean paired per-case difference); < 0: non-inferiority",
    )

    @model_validator(mode="after")
    def _metric_in_range(self) -> TransferabilityClaim:
        value = self.min_metric
        values = [] if value is None else list(value.values()) if isinstance(value, dict) else [value]
        if any(not 0 <= v <= 1 for v in values):
            raise ValueError(f"min_metric must lie in [0, 1], got {value}")
        return self

    @staticmethod
    def _of(value: float | dict[Literal["full", "lora"], float] | None, method: str) -> float | None:
        if isinstance(value, dict):
            return next((v for k, v in value.items() if k == method), None)
        return value

    def metric_floor(self, method: str) -> float | None:
        """The claimed minimum metric of ``method`` (``None``: no claim)."""
        return self._of(self.min_metric, method)

    def gain_floor(self, method: str) -> float | None:
        """The claimed minimum gain of ``method`` over from scratch (``None``: no claim)."""
        return self._of(self.min_gain_over_scratch, method)


class Transferability(Characteristic):
    """000 §6.3.3 against the §5.2.3 claim."""

    key = "transferability"
    clause = "000 §6.3.3"
    requirement = "000 §5.2.3"
    title = "Transferability"
    method = (
        "Fine-tune the pre-trained model on the downstream target with each claimed method (full, LoRA) on "
        "the provider's training cases and settings (000 B.1.6.4: a fraction of the downstream training "
        "cases) and train the same architecture from random weights with the same cases, steps and "
        "settings; score every model per held-out test case (A.10 metric, 95 % bootstrap CI) and each "
        "method's gain over the from-scratch baseline as the mean paired per-case difference (paired "
        "bootstrap CI). Each claim is judged on the CI: the bound must clear the claimed value (non-inferiority "
        "on the lower bound); a CI straddling it is inconclusive. The CIs cover test-case sampling, not the "
        "training seed."
    )
    claim_model = TransferabilityClaim
    applies = Applicability(dims=frozenset({2}), training_run=True)

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
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
            summary = train_run(ctx, out, info, claim.settings, target=claim.target, **extra)
            run = load_run(out)
            predictor = run.predictor()
            if data is None:
                data = load_eval_data(data_dir, claim.target, predictor.input_spec, task=predictor.output_spec.task)
                name = metric_name(data.task)
            labels = predict_labels(predictor, data.images)
            per_case[variant] = case_scores(labels, data)
            summaries[variant] = {
                **summarize(list(per_case[variant].values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples),
                "trainable_parameters": summary.get("trainable_parameters"),
                "train_cases": len(run.record.get("data", {}).get("split", {}).get("train", [])),
                "steps": int(sum(e.get("steps", 0) for e in run.record.get("epochs", []))),
                "seconds": round(time.perf_counter() - started, 2),
            }
            if data.task == "segmentation":
                classes_rows.append({"method": variant, **per_class_dice(labels, data, predictor.output_spec.labels)})
        assert data is not None
        gains = {
            m: paired_difference(per_case[m], per_case["scratch"], seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
            for m in claim.methods
        }
        rows: list[dict[str, Any]] = []
        for variant, s in summaries.items():
            g = gains.get(variant)
            rows.append(
                {
                    "method": variant,
                    name: s["estimate"],
                    "ci_low": s["ci_low"],
                    "ci_high": s["ci_high"],
                    "gain_over_scratch": g["estimate"] if g else None,
                    "gain_ci_low": g["ci_low"] if g else None,
                    "gain_ci_high": g["ci_high"] if g else None,
                    "test_cases": s["n"],
                    "train_cases": s["train_cases"],
                    "steps": s["steps"],
                    "trainable_parameters": s["trainable_parameters"],
                    "seconds": s["seconds"],
                }
            )
        ev.tables.append(
            Table(
                title=f"Downstream task '{claim.target}' (A.10), fine-tuned vs from scratch",
                columns=list(rows[0]),
                rows=rows,
            )
        )
        if classes_rows and len(classes_rows[0]) > 2:
            ev.tables.append(
                Table(title=f"Per-class Dice on '{claim.target}'", columns=list(classes_rows[0]), rows=classes_rows)
            )
        ev.plots.append(
            Plot(
                name="transfer",
                kind="forest",
                title=f"{name} after fine-tuning vs from scratch",
                x_label=name,
                row_labels=[r["method"] for r in rows],
                reference=next((f for m in claim.methods if (f := claim.metric_floor(m)) is not None), None),
                series=[
                    Series(
                        name=name,
                        x=[float(i) for i in range(len(rows))],
                        y=[r[name] for r in rows],
                        low=[r["ci_low"] for r in rows],
                        high=[r["ci_high"] for r in rows],
                    )
                ],
            )
        )
        ev.measurements.update(
            {
                "target": claim.target,
                "settings": claim.settings,
                "scores": {v: s["estimate"] for v, s in summaries.items()},
                "gain_over_scratch": gains,
                "per_case": per_case,
                "seconds": round(sum(s["seconds"] for s in summaries.values()), 2),
            }
        )
        for method in claim.methods:
            s, g = summaries[method], gains[method]
            floor = claim.metric_floor(method)
            if floor is not None:
                ev.at_least(f"{method} fine-tune {name}", floor, s, f"{s['n']} test cases")
            margin = claim.gain_floor(method)
            if margin is not None:
                ev.at_least(
                    f"{method} gain over from-scratch (non-inferiority on the paired CI)",
                    margin,
                    g,
                    f"from scratch {summaries['scratch']['estimate']}",
                )
        return ev


__all__ = ["Transferability", "TransferabilityClaim", "per_class_dice"]
