"""000 §6.3.3 transferability: fine-tune on the downstream task and measure A.10 metrics (§5.2.3).

The pre-trained model is fine-tuned on the downstream target with every claimed method (all
weights, LoRA adapters) using the provider's settings, and the same architecture is trained
from scratch with the same settings as a baseline. Each resulting model is measured on the
held-out test split with a bootstrap CI.

Example
-------
>>> Transferability.clause
'000 §6.3.3'
"""

from __future__ import annotations

from typing import Any

from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, TransferabilityClaim
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.loading import load_eval_data
from aimd.evaluation.scoring import evaluate, metric_name, summarize
from aimd.evaluation.training_support import require_run, train_run


class Transferability(Characteristic):
    """000 §6.3.3 against the §5.2.3 claim."""

    key = "transferability"
    clause = "000 §6.3.3"
    requirement = "000 §5.2.3"
    title = "Transferability"
    method = ("Fine-tune the pre-trained model on the downstream target with each claimed method (full, LoRA) and "
              "train the same architecture from scratch with the same settings; measure each on the held-out test "
              "split (A.10 metric, bootstrap CI) and compare with the claim and the from-scratch baseline.")
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
        rows: list[dict[str, Any]] = []
        scores: dict[str, float] = {}
        name = "metric"
        for variant, extra in variants.items():
            ctx.note(f"transferability: {variant}")
            out = ctx.evidence_dir / f"transfer_{variant}"
            summary = train_run(ctx, out, info, claim.settings, target=claim.target, **extra)
            predictor = load_run(out).predictor()
            data = load_eval_data(data_dir, claim.target, predictor.input_spec, task=predictor.output_spec.task)
            name = metric_name(data.task)
            s = summarize(list(evaluate(predictor, data).values()), seed=ctx.seed,
                          n_resamples=claims.bootstrap_resamples)
            scores[variant] = s["estimate"]
            rows.append({"method": variant, name: s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"],
                         "test_cases": s["n"], "trainable_parameters": summary.get("trainable_parameters"),
                         "seconds": summary.get("seconds")})
        ev.tables.append(Table(title=f"Downstream task '{claim.target}' (A.10)", columns=list(rows[0]), rows=rows))
        ev.plots.append(Plot(name="transfer", kind="forest", title=f"{name} after fine-tuning vs from scratch",
                             x_label=name, row_labels=[r["method"] for r in rows], reference=claim.min_metric,
                             series=[Series(name=name, x=[float(i) for i in range(len(rows))],
                                            y=[r[name] for r in rows], low=[r["ci_low"] for r in rows],
                                            high=[r["ci_high"] for r in rows])]))
        ev.measurements.update({"target": claim.target, "settings": claim.settings, "scores": scores})
        for method in claim.methods:
            if claim.min_metric is not None:
                ev.check(f"{method} fine-tune {name}", f"≥ {claim.min_metric}", scores[method],
                         scores[method] >= claim.min_metric)
            if claim.min_gain_over_scratch is not None:
                gain = round(scores[method] - scores["scratch"], 6)
                ev.check(f"{method} gain over from-scratch", f"≥ {claim.min_gain_over_scratch}", gain,
                         gain >= claim.min_gain_over_scratch)
        return ev


__all__ = ["Transferability"]
