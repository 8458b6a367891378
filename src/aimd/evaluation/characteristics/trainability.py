"""000 §6.3.1 trainability: train with the provider's settings and test convergence (§5.2.1).

The pre-trained model is trained further with the provider's settings on the provider's data;
the training and validation loss curves are the evidence. Convergence: every loss finite (no
NaN / overflow), relative improvement of the training loss at least the claim, no divergence
(last loss not above the first by more than the tolerance), and — when claimed — a plateau.

Example
-------
>>> Trainability.clause
'000 §6.3.1'
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.support.training import plateaued, relative_improvement, require_run, train_run


class TrainabilityClaim(ClaimModel):
    """000 §5.2.1 / §6.3.1: the model keeps optimising under the provider's training settings."""

    settings: dict[str, Any] = Field(
        default_factory=lambda: {"epochs": 3, "max_steps_per_epoch": 4, "lr": 1e-3},
        description="aimd model train settings (TrainConfig fields) to train with",
    )
    min_relative_improvement: float = Field(0.1, ge=0, le=1, description="(first − last) / first training loss")
    divergence_tolerance: float = Field(0.5, ge=0, description="last loss may exceed the first by this fraction")
    plateau_window: int = Field(2, ge=2, description="epochs over which a plateau is measured")
    plateau_tolerance: float = Field(0.01, ge=0, description="relative loss change that counts as a plateau")
    require_plateau: bool = Field(False, description="the loss must have plateaued by the last epoch")


class Trainability(Characteristic):
    """000 §6.3.1 against the §5.2.1 claim."""

    key = "trainability"
    clause = "000 §6.3.1"
    requirement = "000 §5.2.1"
    title = "Trainability"
    method = (
        "Continue training the pre-trained model with the provider's settings on the provider's data "
        "(aimd.models.train, seeded); record the training and validation loss per epoch; test for non-finite "
        "losses, the relative improvement of the training loss, divergence and a plateau."
    )
    claim_model = TrainabilityClaim
    applies = Applicability(dims=frozenset({2}), training_run=True)

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        from aimd.models import load_run

        assert isinstance(claim, TrainabilityClaim)
        run_dir, _data, info = require_run(ctx, self.clause)
        ev = Evidence(seeds={"training": ctx.seed})
        ctx.note("trainability: training")
        out = ctx.evidence_dir / "trainability_run"
        summary = train_run(ctx, out, info, claim.settings, init=run_dir)
        epochs = load_run(out).record["epochs"]
        train_loss = [float(e["train_loss"]) for e in epochs]
        val_loss = [float(e["val_loss"]) for e in epochs]
        x = [float(e["epoch"]) for e in epochs]
        finite = bool(np.isfinite(train_loss).all() and np.isfinite(val_loss).all())
        improvement = relative_improvement(train_loss) if finite else None
        growth = (train_loss[-1] - train_loss[0]) / train_loss[0] if finite and train_loss[0] else None
        plateau = plateaued(train_loss, claim.plateau_window, claim.plateau_tolerance) if finite else False
        ev.measurements.update(
            {
                "epochs_run": len(epochs),
                "first_train_loss": train_loss[0],
                "last_train_loss": train_loss[-1],
                "relative_improvement": improvement,
                "plateau_reached": plateau,
                "stopped_early": summary.get("stopped_early"),
                "settings": claim.settings,
                "seconds": summary.get("seconds"),
            }
        )
        ev.files["training_run"] = str(out.relative_to(ctx.out_dir)) if out.is_relative_to(ctx.out_dir) else str(out)
        ev.tables.append(
            Table(
                title="Loss per epoch",
                columns=["epoch", "train_loss", "val_loss", "val_metric"],
                rows=[{k: e.get(k) for k in ("epoch", "train_loss", "val_loss", "val_metric")} for e in epochs],
            )
        )
        ev.plots.append(
            Plot(
                name="loss",
                kind="line",
                title="Loss curves",
                x_label="epoch",
                y_label="loss",
                series=[
                    Series(name="train", x=x, y=list(train_loss)),
                    Series(name="validation", x=x, y=list(val_loss)),
                ],
            )
        )
        ev.check("all losses finite (no NaN / divergence to infinity)", True, finite, finite)
        if finite:
            ev.check(
                "relative improvement of the training loss",
                f"≥ {claim.min_relative_improvement}",
                improvement,
                improvement is not None and improvement >= claim.min_relative_improvement,
            )
            ev.check(
                "no divergence",
                f"growth ≤ {claim.divergence_tolerance}",
                round(float(growth or 0.0), 6),
                (growth or 0.0) <= claim.divergence_tolerance,
            )
            if claim.require_plateau:
                ev.check("plateau reached", True, plateau, plateau)
        return ev


__all__ = ["Trainability"]
