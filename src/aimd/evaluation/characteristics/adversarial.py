"""000 §6.3.8 adversarial security: white-box FGSM and PGD and black-box Square Attack (ART) (§5.2.8).

000 §6.3.8 allows black-box or white-box perturbations; aimd runs both kinds. For the white-box
attacks the network is wrapped as an ART ``PyTorchClassifier`` whose "classes" are its output pixels
(logits flattened) with a per-pixel loss (binary cross-entropy for sigmoid outputs, cross-entropy
over channels for softmax), so ART's gradient attacks maximise the segmentation loss directly.
Each attack runs at graded budgets ε in normalised input units ([0, 1] after preprocessing) and
the report gives the same budgets in the input's physical units (HU for a CT window: ε · window
width; stored values for bit-depth scaling). The black-box attack
(:mod:`aimd.evaluation.adversarial_blackbox`) needs only the predictor's probabilities, so it also
runs on exported models, and its table rows give the model queries it spent.

Example
-------
>>> from aimd.models.specs import InputSpec, Intensity
>>> physical_epsilon(0.01, InputSpec(modality="CT", intensity=Intensity(method="window", windows=((40, 400),))))
{'unit': 'HU', 'per_channel': [4.0]}
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, PositiveFloat

from aimd.core.errors import InvalidInputError
from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.support.blackbox import square_attack
from aimd.evaluation.support.drops import Curve, drop_fields, judge_worst_drop
from aimd.evaluation.support.parallel import execution, task_map
from aimd.evaluation.support.pixel_loss import art_estimator, flat_targets
from aimd.evaluation.support.sampling import sample_evenly
from aimd.evaluation.support.scoring import case_scores, labels_from_probs, metric_name, summarize
from aimd.evaluation.support.stats import paired_difference
from aimd.models.specs import InputSpec

WHITE_BOX = ("fgsm", "pgd")
BLACK_BOX = ("square",)


def physical_epsilon(eps: float, spec: InputSpec) -> dict[str, Any]:
    """``eps`` (normalised units) in the raw input's units, per input channel."""
    intensity = spec.intensity
    if intensity.method == "window":
        return {"unit": "HU", "per_channel": [round(eps * w, 4) for _c, w in intensity.windows]}
    if intensity.method == "bit_depth" and intensity.bits:
        return {"unit": "stored value", "per_channel": [round(eps * (2**intensity.bits - 1), 4)]}
    return {"unit": "normalised (no fixed raw scale)", "per_channel": [eps]}


def raw_units(eps: float, spec: InputSpec) -> str:
    """:func:`physical_epsilon` as a phrase: ``"15, 4 HU per channel"``."""
    phys = physical_epsilon(eps, spec)
    return f"{', '.join(f'{v:g}' for v in phys['per_channel'])} {phys['unit']} per channel"


class AdversarialClaim(ClaimModel):
    """000 §5.2.8 / §6.3.8: performance under white-box (FGSM, PGD) and black-box (Square) attacks."""

    attacks: list[Literal["fgsm", "pgd", "square"]] = Field(
        default_factory=lambda: ["fgsm", "pgd", "square"],
        description="fgsm, pgd: white-box (gradients); square: black-box (output probabilities only)",
    )
    epsilons: list[PositiveFloat] = Field(
        default_factory=lambda: [0.002, 0.005, 0.01, 0.02], description="attack budgets in normalised input units"
    )
    claimed_epsilon: float = Field(0.005, gt=0, description="budget up to which the claim holds")
    max_metric_drop: float = Field(0.1, ge=0, description="allowed metric drop up to the claimed budget (each attack)")
    pgd_steps: int = Field(5, ge=1, le=1000)
    square_iterations: int = Field(
        30, ge=1, le=10000, description="Square Attack updates per budget (~one model query per image each)"
    )
    square_p_init: float = Field(0.3, gt=0, lt=1, description="image share the first Square Attack squares cover")
    sample_images: int = Field(16, ge=2, description="test images attacked, evenly spaced over all cases")


class Adversarial(Characteristic):
    """000 §6.3.8 against the §5.2.8 claim."""

    key = "adversarial"
    clause = "000 §6.3.8"
    requirement = "000 §5.2.8"
    title = "Adversarial security"
    method = (
        "Wrap the network for ART (per-pixel loss), run white-box FGSM and PGD (untargeted, no random start) "
        "and the black-box Square Attack (ART, L∞, the model's output probabilities only, per-pixel margin "
        "loss, model queries counted) at graded ε in normalised units, predict the adversarial images with "
        "the model and measure the metric with bootstrap CIs; ε is also given in the input's physical units "
        "(HU)."
    )
    claim_model = AdversarialClaim
    applies = Applicability(dims=frozenset({2}), note="the attacks perturb 2-D network inputs")

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, AdversarialClaim)
        white = [a for a in claim.attacks if a in WHITE_BOX]
        if white and ctx.network is None:
            raise InvalidInputError(
                f"white-box attacks {white} need the model's torch module (gradients)",
                where="--model",
                hint="evaluate a training-run folder or a torch model, or "
                "list only the black-box attack (adversarial.attacks: [square])",
            )
        spec_in, spec_out = ctx.predictor.input_spec, ctx.predictor.output_spec
        data = sample_evenly(ctx.data, claim.sample_images)
        channels = spec_out.channels
        y = flat_targets(data.targets, channels, spec_out.activation)
        name = metric_name(data.task)
        ev = Evidence(seeds={"attacks": ctx.seed})

        def per_case(images: np.ndarray) -> dict[str, float]:
            return case_scores(labels_from_probs(ctx.predictor.predict(images), spec_out), data)

        def score(cases: dict[str, float]) -> dict[str, Any]:
            return summarize(list(cases.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)

        clean_cases = per_case(data.images)
        clean = score(clean_cases)
        ev.measurements.update(
            {
                "clean": clean,
                "images": len(data),
                "attack_kind": {a: "black-box" if a in BLACK_BOX else "white-box" for a in claim.attacks},
            }
        )
        rows: list[dict[str, Any]] = []
        series: list[Series] = []
        eps_list = sorted(claim.epsilons)
        jobs = [
            (attack, eps, ctx.predictor, ctx.network if attack in WHITE_BOX else None, data.images, y, claim, ctx.seed)
            for attack in claim.attacks
            for eps in eps_list
        ]
        ctx.note(f"adversarial: {len(jobs)} attack budgets" + (f" as Ray tasks ({ctx.ray})" if ctx.ray else ""))
        attacked = iter(task_map(ctx, attack_images, jobs))
        ev.measurements["execution"] = execution(ctx)
        for attack in claim.attacks:
            curve = Curve(clean)
            for eps in eps_list:
                adv, queries = next(attacked)
                adv_cases = per_case(adv)
                s = score(adv_cases)
                drop = paired_difference(clean_cases, adv_cases, seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
                rows.append(
                    {
                        "attack": attack,
                        "kind": "black-box" if attack in BLACK_BOX else "white-box",
                        "epsilon": eps,
                        "epsilon_physical": physical_epsilon(eps, spec_in),
                        **drop_fields(name, s, drop),
                        "max_abs_perturbation": round(float(np.abs(adv - data.images).max()), 6),
                        "model_queries": queries,
                        "queries_per_image": None if queries is None else round(queries / len(data), 3),
                    }
                )
                curve.add(s)
            series.append(curve.series(attack, eps_list))
            judge_worst_drop(
                ev,
                f"{attack}: {name} drop up to ε {claim.claimed_epsilon}",
                [r for r in rows if r["attack"] == attack],
                level="epsilon",
                claimed=claim.claimed_epsilon,
                limit=claim.max_metric_drop,
                detail=lambda worst: (
                    f"worst at ε {worst['epsilon']}; "
                    f"ε {claim.claimed_epsilon} = {raw_units(claim.claimed_epsilon, spec_in)}"
                ),
                missing=f"no attack budget at or below the claimed ε {claim.claimed_epsilon} (budgets {eps_list})",
            )
        if any(a in BLACK_BOX for a in claim.attacks):
            spent = [r["model_queries"] for r in rows if r["kind"] == "black-box"]
            ev.measurements["black_box"] = {
                "attack": "ART SquareAttack (L∞, untargeted, one restart)",
                "access": "output probabilities only",
                "loss": "mean over pixels of max(correct-label logit margin, 0)",
                "iterations": claim.square_iterations,
                "p_init": claim.square_p_init,
                "model_queries_total": int(sum(spent)),
                "model_queries_per_budget_max": int(max(spent)),
            }
        ev.tables.append(Table(title="Metric under attack", columns=list(rows[0]), rows=rows))
        ev.plots.append(
            Plot(
                name="adversarial_curves",
                kind="line",
                title=f"{name} vs attack budget ε",
                x_label="ε (normalised input units)",
                y_label=name,
                series=series,
            )
        )
        return ev


def attack_images(
    attack: str,
    eps: float,
    predictor: Any,
    network: torch.nn.Module | None,
    images: np.ndarray,
    y: np.ndarray,
    claim: AdversarialClaim,
    seed: int,
) -> tuple[np.ndarray, int | None]:
    """Adversarial ``images`` within ``eps`` and the model queries spent (``None`` for gradient attacks).

    One attack at one budget: pure and seeded, so it may run as a Ray task. White-box attacks wrap
    ``network`` for ART here; the black-box attack queries ``predictor`` only.
    """
    if attack in BLACK_BOX:
        res = square_attack(
            predictor, images, y, eps, iterations=claim.square_iterations, p_init=claim.square_p_init, seed=seed
        )
        return res.adversarial, res.queries
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    assert network is not None
    spec_out = predictor.output_spec
    estimator = art_estimator(network, images.shape[1:], spec_out.channels, spec_out.activation)
    torch.manual_seed(seed)
    if attack == "fgsm":
        atk: Any = FastGradientMethod(estimator, eps=eps, eps_step=eps, batch_size=8)
    else:
        atk = ProjectedGradientDescent(
            estimator,
            eps=eps,
            eps_step=eps / 4,
            max_iter=claim.pgd_steps,
            num_random_init=0,
            batch_size=8,
            verbose=False,
        )
    adv = atk.generate(x=images, y=y).astype(np.float32)
    return np.clip(adv, 0.0, 1.0), None


__all__ = ["BLACK_BOX", "WHITE_BOX", "Adversarial", "AdversarialClaim", "attack_images", "physical_epsilon"]
