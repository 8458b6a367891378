"""000 §6.3.6 robustness (§5.2.6 h–i, A.12.2 a–b).

* A.12.2 a / §5.2.6 h — TorchIO artefacts (noise, bias field, motion, ghosting, spike, blur) at
  graded severities: applied to each preprocessed test slice here, or — for a third-party volume
  model — taken from the dataset's perturbed copies (applied to the stored intensities before the
  model's own preprocessing); metric-vs-severity curves with bootstrap CIs; the drop up to the
  claimed severity must stay within the claimed bound.
* §5.2.6 i — out-of-distribution probes (:mod:`aimd.evaluation.support.ood`), each recorded as
  flagged (the model's input checks reject it) or not.
* A.12.2 b — unqualified samples (uniform noise, and test images with inverted contrast as
  another image type) mixed in with the qualified ones: each unqualified sample must itself be
  *recognised* — rejected by the model's input checks, or answered without a confident finding
  (no more than ``finding_fraction`` of its pixels labelled foreground with probability ≥
  ``confident_probability``) — and the metric on the qualified samples must not move.

Example
-------
>>> RobustnessClaim().max_confident_unqualified
0.0
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from aimd.evaluation.base import Characteristic, ClaimModel
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.support.artefacts import ARTEFACTS, apply_artefact, artefact_parameters
from aimd.evaluation.support.drops import Curve, drop_fields, judge_worst_drop
from aimd.evaluation.support.ood import flagged, record_probes
from aimd.evaluation.support.parallel import execution, task_map
from aimd.evaluation.support.sampling import sample_evenly
from aimd.evaluation.support.scoring import case_scores, evaluate, labels_from_probs, metric_name, summarize
from aimd.evaluation.support.stats import paired_difference
from aimd.models.specs import OutputSpec


class RobustnessClaim(ClaimModel):
    """000 §5.2.6 h–i / §6.3.6, A.12.2 a–b."""

    artefacts: list[Literal["noise", "bias_field", "motion", "ghosting", "spike", "blur"]] = Field(
        default_factory=lambda: list(ARTEFACTS)
    )
    severities: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0], description="graded severities in (0, 1]; 1 is the strongest level"
    )
    claimed_severity: float = Field(0.5, gt=0, le=1, description="severity up to which the claim holds")
    sample_images: int = Field(96, ge=2, description="test images perturbed, evenly spaced over all cases")
    max_metric_drop: float = Field(0.1, ge=0, description="allowed absolute drop of the metric")
    ood_must_flag: list[
        Literal["other_modality", "wrong_spacing", "corrupted", "unpreprocessed", "other_body_part"]
    ] = Field(
        default_factory=lambda: ["other_modality", "wrong_spacing", "corrupted", "unpreprocessed"],
        description="out-of-distribution kinds the model's input checks reject (5.2.6 i)",
    )
    mixed_fraction: float = Field(0.25, gt=0, lt=1, description="share of unqualified samples mixed in")
    confident_probability: float = Field(0.9, gt=0.5, le=1, description="output probability that asserts a finding")
    finding_fraction: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="share of an item's pixels labelled foreground "
        "with a confident probability above which it carries a confident finding",
    )
    max_confident_unqualified: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of unqualified samples allowed to "
        "give a confident finding instead of being rejected (A.12.2 b)",
    )
    max_mixed_metric_drop: float = Field(
        0.1, ge=0, description="drop on the qualified samples when unqualified are mixed in"
    )


def confident_findings(
    probs: NDArray[np.float32], spec: OutputSpec, *, probability: float, fraction: float
) -> NDArray[np.bool_]:
    """Per item: does the output assert a finding with confidence?

    Segmentation: more than ``fraction`` of the pixels labelled a foreground class with probability
    ≥ ``probability``; classification: the top class probability ≥ ``probability``.

    Example
    -------
    >>> from aimd.models.specs import OutputSpec
    >>> s = OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid")
    >>> p = np.zeros((2, 1, 4, 4), np.float32); p[0, 0, :2] = 0.99; p[1, 0, :2] = 0.7
    >>> confident_findings(p, s, probability=0.9, fraction=0.01).tolist()
    [True, False]
    """
    n = probs.shape[0]
    if spec.task == "classification":
        return np.asarray(probs.reshape(n, -1).max(axis=1) >= probability)
    fg = probs[:, 0] if spec.activation == "sigmoid" else probs[:, 1:].max(axis=1)
    share = (fg >= probability).reshape(n, -1).mean(axis=1)
    return np.asarray(share > fraction)


def unqualified_samples(data: EvalData, count: int, seed: int) -> tuple[NDArray[np.float32], list[str]]:
    """``count`` unqualified inputs shaped like ``data``'s: uniform noise and contrast-inverted items, alternating."""
    rng = np.random.default_rng(seed)
    out, kinds = [], []
    for i in range(count):
        if i % 2 == 0:
            out.append(rng.random(data.images.shape[1:]).astype(np.float32))
            kinds.append("noise")
        else:
            out.append((1.0 - data.images[(i // 2) % len(data)]).astype(np.float32))
            kinds.append("inverted contrast")
    return np.stack(out), kinds


def perturbed_scores(
    predictor: Any, data: EvalData, artefact: str | None, severity: float, seed: int
) -> dict[str, float]:
    """Per-case metric of ``predictor`` on ``data`` with ``artefact`` applied at ``severity`` (``None``: as given).

    One perturbation of the sweep: pure and seeded, so it may run as a Ray task.
    """
    if artefact is not None:
        data = data.with_images(apply_artefact(data.images, artefact, severity, seed=seed))
    return evaluate(predictor, data)


class Robustness(Characteristic):
    """000 §6.3.6 against the §5.2.6 claim."""

    key = "robustness"
    clause = "000 §6.3.6"
    requirement = "000 §5.2.6"
    title = "Robustness"
    method = (
        "Apply TorchIO artefacts (noise, bias field, motion, ghosting, spike, blur) at graded severities, "
        "seeded per image — to the test slices, or for a volume model the dataset's perturbed copies made "
        "before the model's own preprocessing — and measure the metric with bootstrap CIs (A.12.2 a); submit "
        "out-of-distribution inputs and record whether the model's input checks reject them (5.2.6 i); mix "
        "unqualified samples (noise, inverted contrast) in with the qualified ones and record whether each "
        "unqualified sample is rejected or answered without a confident finding, and whether the metric on "
        "the qualified ones moves (A.12.2 b)."
    )
    claim_model = RobustnessClaim

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, RobustnessClaim)
        name = metric_name(ctx.data.task)
        if ctx.perturbed is not None:
            ev = Evidence(seeds={cid: int(rec.get("seed", 0)) for cid, rec in ctx.perturbations.items()})
            data = ctx.data
            ev.measurements["perturbed_copies"] = {f"{a} {s:g}": len(d) for (a, s), d in ctx.perturbed.items()}
        else:
            ev = Evidence(seeds={"artefacts": ctx.seed})
            data = sample_evenly(ctx.data, claim.sample_images)
            ev.measurements["images"] = {"perturbed": len(data), "of": len(ctx.data), "cases": len(data.cases)}
        clean = evaluate(ctx.predictor, data)
        base = summarize(list(clean.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
        ev.measurements["clean"] = base
        rows: list[dict[str, Any]] = []
        series: list[Series] = []
        levels_of = {art: self._levels(ctx, claim, art) for art in claim.artefacts}
        jobs = [
            (ctx.predictor, data, art, sev, ctx.seed)
            if ctx.perturbed is None
            else (ctx.predictor, ctx.perturbed[(art, sev)], None, sev, ctx.seed)
            for art, levels in levels_of.items()
            for sev in levels
        ]
        ctx.note(f"robustness: {len(jobs)} perturbations" + (f" as Ray tasks ({ctx.ray})" if ctx.ray else ""))
        all_scores = iter(task_map(ctx, perturbed_scores, jobs))
        ev.measurements["execution"] = execution(ctx)
        for art, levels in levels_of.items():
            curve = Curve(base)
            for sev in levels:
                scores = next(all_scores)
                s = summarize(list(scores.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
                # paired: clean minus perturbed over the same source cases, with a paired bootstrap CI
                drop = paired_difference(clean, scores, seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
                rows.append(
                    {
                        "artefact": art,
                        "severity": sev,
                        **artefact_parameters(art, sev),
                        **drop_fields(name, s, drop),
                        "cases": s["n"],
                    }
                )
                curve.add(s)
            if levels:
                series.append(curve.series(art, levels))
            judge_worst_drop(
                ev,
                f"{art}: metric drop up to severity {claim.claimed_severity}",
                [r for r in rows if r["artefact"] == art],
                level="severity",
                claimed=claim.claimed_severity,
                limit=claim.max_metric_drop,
                detail=lambda worst: f"worst at severity {worst['severity']} (paired over {worst['cases']} cases)",
                missing="no measured severity at or below the claimed one"
                if ctx.perturbed is None
                else "the dataset holds no perturbed copy at or below the claimed severity",
            )
        ev.tables.append(
            Table(
                title="Metric per artefact and severity (A.12.2 a)",
                columns=[
                    "artefact",
                    "severity",
                    name,
                    "ci_low",
                    "ci_high",
                    "cases",
                    "drop",
                    "drop_ci_low",
                    "drop_ci_high",
                ],
                rows=rows,
            )
        )
        if series:
            ev.plots.append(
                Plot(
                    name="robustness_curves",
                    kind="line",
                    title=f"{name} vs artefact severity",
                    x_label="severity (0 = clean)",
                    y_label=name,
                    series=series,
                )
            )
        record_probes(ctx, list(claim.ood_must_flag), ev)
        self._mixed(ctx, claim, ev, data, name)
        return ev

    @staticmethod
    def _levels(ctx: EvaluationContext, claim: RobustnessClaim, art: str) -> list[float]:
        if ctx.perturbed is None:
            return sorted(claim.severities)
        return sorted(s for (a, s) in ctx.perturbed if a == art and any(np.isclose(s, c) for c in claim.severities))

    @staticmethod
    def _mixed(ctx: EvaluationContext, claim: RobustnessClaim, ev: Evidence, data: EvalData, name: str) -> None:
        spec = ctx.predictor.output_spec
        n = len(data)
        k = max(2, round(n * claim.mixed_fraction / (1 - claim.mixed_fraction)))
        bad, kinds = unqualified_samples(data, k, ctx.seed + 1)
        rows: list[dict[str, Any]] = []
        for i in range(k):
            rejected, text, probs = flagged(lambda i=i: ctx.predictor.predict(bad[i : i + 1]))
            finding = (
                bool(
                    confident_findings(
                        probs, spec, probability=claim.confident_probability, fraction=claim.finding_fraction
                    )[0]
                )
                if not rejected
                else False
            )
            status = "rejected" if rejected else "confident finding" if finding else "low confidence"
            rows.append({"sample": i, "kind": kinds[i], "outcome": status, "response": text if rejected else ""})
        unrecognised = sum(r["outcome"] == "confident finding" for r in rows)
        share = round(unrecognised / k, 6)
        ev.tables.append(
            Table(
                title="Unqualified samples mixed in (A.12.2 b)",
                columns=["sample", "kind", "outcome", "response"],
                rows=rows,
            )
        )
        ev.check(
            "unqualified samples giving a confident finding (A.12.2 b)",
            f"≤ {claim.max_confident_unqualified}",
            share,
            share <= claim.max_confident_unqualified,
            f"{unrecognised} of {k}; recognised = rejected by the input checks or no confident finding "
            f"(> {claim.finding_fraction:.0%} of pixels at probability ≥ {claim.confident_probability})",
        )
        rng = np.random.default_rng(ctx.seed + 2)
        order = rng.permutation(n + k)
        rejected, text, probs = flagged(lambda: ctx.predictor.predict(np.concatenate([data.images, bad])[order]))
        if rejected:
            ev.not_evaluated(
                f"{name} drop on qualified samples with unqualified mixed in (A.12.2 b)",
                f"≤ {claim.max_mixed_metric_drop}",
                f"the model rejected the mixed batch: {text}",
            )
            return
        labels = labels_from_probs(probs, spec)
        back = np.empty_like(labels)
        back[order] = labels
        good = case_scores(back[:n], data)
        clean = case_scores(labels_from_probs(ctx.predictor.predict(data.images), spec), data)
        drop = round(float(np.mean(list(clean.values())) - np.mean(list(good.values()))), 6)
        ev.measurements["mixed_unqualified"] = {
            "qualified": n,
            "unqualified": k,
            "metric_drop": drop,
            "confident_unqualified_share": share,
        }
        ev.check(
            f"{name} drop on qualified samples with unqualified mixed in (A.12.2 b)",
            f"≤ {claim.max_mixed_metric_drop}",
            drop,
            drop <= claim.max_mixed_metric_drop,
            f"{k} unqualified samples mixed into {n}",
        )


__all__ = ["Robustness", "RobustnessClaim", "confident_findings", "unqualified_samples"]
