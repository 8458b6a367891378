"""000 §6.3.6 robustness (§5.2.6 h–i, A.12.2 a–b).

* A.12.2 a / §5.2.6 h — TorchIO artefacts (noise, bias field, motion, ghosting, spike, blur)
  applied to each preprocessed test image at graded severities; metric-vs-severity curves with
  bootstrap CIs; the drop up to the claimed severity must stay within the claimed bound.
* §5.2.6 i — out-of-distribution probes: another modality, a wrong pixel spacing, corrupted
  (NaN) pixels, unpreprocessed raw values, another body part; each is recorded as flagged (the
  model's input checks reject it) or not.
* A.12.2 b — unqualified samples (noise images) mixed into the correct ones: the metric on the
  correct ones must not change by more than the claimed bound.

Sampling is separate from applying: :func:`artefact_transform` builds the TorchIO transform for
an artefact and severity, every application is seeded and recorded.

Example
-------
>>> artefact_parameters("noise", 0.5)
{'std': 0.05}
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from aimd.core.errors import AimdError, InvalidInputError
from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, RobustnessClaim
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.scoring import case_scores, evaluate, labels_from_probs, metric_name, summarize
from aimd.imaging.volume import Volume


def artefact_parameters(name: str, severity: float) -> dict[str, Any]:
    """TorchIO parameters of ``name`` at ``severity`` in (0, 1] (images in [0, 1], 1 mm pixels)."""
    if not 0 < severity <= 1:
        raise InvalidInputError(f"severity must be in (0, 1], got {severity}", where="robustness.severities",
                                hint="use graded levels such as 0.25, 0.5, 1.0")
    s = float(severity)
    table: dict[str, dict[str, Any]] = {
        "noise": {"std": round(0.1 * s, 6)},
        "bias_field": {"coefficients": round(0.6 * s, 6), "order": 3},
        "motion": {"degrees": round(10 * s, 6), "translation": round(6 * s, 6), "num_transforms": 2},
        "ghosting": {"num_ghosts": 4, "intensity": round(0.8 * s, 6)},
        "spike": {"num_spikes": 1, "intensity": round(1.5 * s, 6)},
        "blur": {"std": round(2.0 * s, 6)},
    }
    if name not in table:
        raise InvalidInputError(f"unknown artefact {name!r}", where="robustness.artefacts",
                                hint=f"choose from {sorted(table)}")
    return table[name]


def artefact_transform(name: str, severity: float) -> Any:
    """The TorchIO transform for ``name`` at ``severity`` (fixed magnitude, random direction/phase)."""
    import torchio as tio

    p = artefact_parameters(name, severity)
    if name == "noise":
        return tio.RandomNoise(mean=0.0, std=(p["std"], p["std"]))
    if name == "bias_field":
        return tio.RandomBiasField(coefficients=(p["coefficients"], p["coefficients"]), order=p["order"])
    if name == "motion":
        return tio.RandomMotion(degrees=(p["degrees"], p["degrees"]), translation=(p["translation"], p["translation"]),
                                num_transforms=p["num_transforms"])
    if name == "ghosting":
        return tio.RandomGhosting(num_ghosts=(p["num_ghosts"], p["num_ghosts"]), axes=(0, 1),
                                  intensity=(p["intensity"], p["intensity"]))
    if name == "spike":
        return tio.RandomSpike(num_spikes=(p["num_spikes"], p["num_spikes"]),
                               intensity=(p["intensity"], p["intensity"]))
    return tio.RandomBlur(std=(p["std"], p["std"], p["std"], p["std"], 0.0, 0.0))


def apply_artefact(images: NDArray[np.float32], name: str, severity: float, *, seed: int) -> NDArray[np.float32]:
    """``images`` ``(n, c, h, w)`` with the artefact applied per image (seed ``seed + i``), clipped to [0, 1].

    Example
    -------
    >>> x = np.full((2, 1, 16, 16), 0.5, np.float32)
    >>> y = apply_artefact(x, "noise", 1.0, seed=0)
    >>> bool(0.05 < y.std() < 0.15), y.shape
    (True, (2, 1, 16, 16))
    """
    import torchio as tio

    transform = artefact_transform(name, severity)
    out = np.empty_like(images, dtype=np.float32)
    for i in range(images.shape[0]):
        torch.manual_seed(seed + i)
        tensor = torch.from_numpy(np.ascontiguousarray(images[i], dtype=np.float32))[..., None]
        image = tio.ScalarImage(tensor=tensor)
        out[i] = transform(image).data[..., 0].numpy()
    return np.clip(out, 0.0, 1.0)


def sample_evenly(data: EvalData, count: int) -> EvalData:
    """At most ``count`` items of ``data``, evenly spaced over its (case-ordered) items.

    Example
    -------
    >>> d = EvalData(np.zeros((10, 1, 2, 2), np.float32), np.zeros((10, 2, 2), np.int64), ["a"] * 5 + ["b"] * 5,
    ...              {}, task="segmentation")
    >>> sample_evenly(d, 4).case_ids
    ['a', 'a', 'b', 'b']
    """
    if len(data) <= count:
        return data
    idx = np.unique(np.linspace(0, len(data) - 1, count).round().astype(np.int64))
    return data.subset(idx)


def _flagged(call: Any) -> tuple[bool, str]:
    try:
        call()
    except AimdError as err:
        return True, err.message
    return False, "accepted without a warning"


class Robustness(Characteristic):
    """000 §6.3.6 against the §5.2.6 claim."""

    key = "robustness"
    clause = "000 §6.3.6"
    requirement = "000 §5.2.6"
    title = "Robustness"
    method = ("Apply TorchIO artefacts (noise, bias field, motion, ghosting, spike, blur) to every test image at "
              "graded severities (seeded per image) and measure the metric with bootstrap CIs (A.12.2 a); submit "
              "out-of-distribution inputs and record whether the model's input checks reject them (5.2.6 i); mix "
              "unqualified noise images into the correct ones and re-measure the correct ones (A.12.2 b).")
    claim_model = RobustnessClaim

    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
        assert isinstance(claim, RobustnessClaim)
        ev = Evidence(seeds={"artefacts": ctx.seed})
        name = metric_name(ctx.data.task)
        data = sample_evenly(ctx.data, claim.sample_images)
        ev.measurements["images"] = {"perturbed": len(data), "of": len(ctx.data), "cases": len(data.cases)}
        clean = list(evaluate(ctx.predictor, data).values())
        base = summarize(clean, seed=ctx.seed, n_resamples=claims.bootstrap_resamples)
        ev.measurements["clean"] = base
        rows: list[dict[str, Any]] = []
        series: list[Series] = []
        levels = sorted(claim.severities)
        for art in claim.artefacts:
            ctx.note(f"robustness: {art}")
            ys, lo, hi = [base["estimate"]], [base["ci_low"]], [base["ci_high"]]
            for sev in levels:
                perturbed = data.with_images(apply_artefact(data.images, art, sev, seed=ctx.seed))
                s = summarize(list(evaluate(ctx.predictor, perturbed).values()), seed=ctx.seed,
                              n_resamples=claims.bootstrap_resamples)
                drop = round(base["estimate"] - s["estimate"], 6)
                rows.append({"artefact": art, "severity": sev, **artefact_parameters(art, sev), name: s["estimate"],
                             "ci_low": s["ci_low"], "ci_high": s["ci_high"], "drop": drop})
                ys.append(s["estimate"])
                lo.append(s["ci_low"])
                hi.append(s["ci_high"])
            series.append(Series(name=art, x=[0.0, *levels], y=ys, low=lo, high=hi))
            within = [r["drop"] for r in rows if r["artefact"] == art and r["severity"] <= claim.claimed_severity]
            worst = max(within) if within else None
            ev.check(f"{art}: metric drop up to severity {claim.claimed_severity}", f"≤ {claim.max_metric_drop}",
                     worst, worst is not None and worst <= claim.max_metric_drop,
                     "" if within else "no measured severity at or below the claimed one")
        ev.tables.append(Table(title="Metric per artefact and severity (A.12.2 a)",
                               columns=["artefact", "severity", name, "ci_low", "ci_high", "drop"], rows=rows))
        ev.plots.append(Plot(name="robustness_curves", kind="line", title=f"{name} vs artefact severity",
                             x_label="severity (0 = clean)", y_label=name, series=series))
        self._ood(ctx, claim, ev)
        self._mixed(ctx, claim, ev, name)
        return ev

    @staticmethod
    def _ood(ctx: EvaluationContext, claim: RobustnessClaim, ev: Evidence) -> None:
        spec = ctx.predictor.input_spec
        h, w = (int(s) for s in ctx.data.images.shape[2:4])
        raw = np.zeros((1, h, w), np.int16)
        spacing = (spec.spacing_mm[0], spec.spacing_mm[1], 1.0) if spec.spacing_mm else (1.0, 1.0, 1.0)
        other = "MR" if spec.modality != "MR" else "CT"
        rng = np.random.default_rng(ctx.seed)
        yy, xx = np.mgrid[:h, :w]
        ring = np.abs(np.hypot(yy - h / 2, xx - w / 2) - min(h, w) / 3) < 2
        body = np.repeat(ring[None, None].astype(np.float32), spec.channels, axis=1)
        probes: dict[str, Any] = {
            "other_modality": lambda: ctx.predictor.predict_volume(Volume(raw, spacing=spacing, modality=other)),
            "corrupted": lambda: ctx.predictor.predict(np.where(rng.random(ctx.data.images[:1].shape) < 0.01,
                                                                np.nan, ctx.data.images[:1]).astype(np.float32)),
            "unpreprocessed": lambda: ctx.predictor.predict(ctx.data.images[:1] * 1000.0 - 500.0),
            "other_body_part": lambda: ctx.predictor.predict(body),
        }
        if spec.spacing_mm is not None:
            wrong = (spacing[0] * 4, spacing[1] * 4, 1.0)
            probes["wrong_spacing"] = lambda: ctx.predictor.predict_volume(
                Volume(raw, spacing=wrong, modality=spec.modality))
        rows = []
        for kind in ("other_modality", "wrong_spacing", "corrupted", "unpreprocessed", "other_body_part"):
            if kind not in probes:
                rows.append({"probe": kind, "flagged": None, "response": "not applicable: the model declares no "
                             "pixel spacing"})
                continue
            flagged, text = _flagged(probes[kind])
            rows.append({"probe": kind, "flagged": flagged, "response": text})
        ev.tables.append(Table(title="Out-of-distribution probes (5.2.6 i)", columns=["probe", "flagged", "response"],
                               rows=rows))
        for row in rows:
            if row["probe"] in claim.ood_must_flag:
                ev.check(f"OOD {row['probe']} flagged", True, row["flagged"], row["flagged"] is True, row["response"])

    @staticmethod
    def _mixed(ctx: EvaluationContext, claim: RobustnessClaim, ev: Evidence, name: str) -> None:
        data = ctx.data
        n = len(data)
        k = max(1, round(n * claim.mixed_fraction / (1 - claim.mixed_fraction)))
        rng = np.random.default_rng(ctx.seed + 1)
        bad = rng.random((k, *data.images.shape[1:])).astype(np.float32)
        order = rng.permutation(n + k)
        mixed = np.concatenate([data.images, bad])[order]
        probs = ctx.predictor.predict(mixed)
        labels = labels_from_probs(probs, ctx.predictor.output_spec)
        back = np.empty_like(labels)
        back[order] = labels
        good = case_scores(back[:n], data)
        clean = case_scores(labels_from_probs(ctx.predictor.predict(data.images), ctx.predictor.output_spec), data)
        drop = round(float(np.mean(list(clean.values())) - np.mean(list(good.values()))), 6)
        fg = float(np.mean(back[n:] > 0))
        ev.measurements["mixed_unqualified"] = {"qualified": n, "unqualified": k, "metric_drop": drop,
                                                "unqualified_positive_fraction": round(fg, 6)}
        ev.check(f"{name} drop on qualified samples with unqualified mixed in (A.12.2 b)",
                 f"≤ {claim.max_mixed_metric_drop}", drop, drop <= claim.max_mixed_metric_drop,
                 f"{k} noise images mixed into {n}; {fg:.1%} of their outputs positive")


__all__ = ["Robustness", "apply_artefact", "artefact_parameters", "artefact_transform", "sample_evenly"]
