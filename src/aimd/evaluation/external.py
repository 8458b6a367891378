"""Evaluate a third-party, inference-only volume model (000 §6.1–§6.3): deepbet on a mask dataset.

A third-party model reaches aimd as a network file plus its own preprocessing; there is no
training run, so the characteristics that need one (trainability, transferability, privacy's
train split) do not apply. :func:`volume_context` opens such a model — any
:class:`~aimd.models.external.VolumePipeline` — on a mask dataset
(:func:`~aimd.evaluation.external_data.write_mask_dataset`) as an :class:`EvaluationContext`
whose items are whole 3-D network inputs; :func:`deepbet_context` does so for deepbet with its
000 §4 description derived from the TorchScript archive.

:class:`VolumeRobustness` is 000 §6.3.6 for volumes: the artefacts are the dataset's perturbed
copies (applied to the stored intensities before the model's own preprocessing, A.12.2 a), the
out-of-distribution probes go through the model's pipeline (5.2.6 i), and unqualified samples
are mixed in as in :class:`Robustness` (A.12.2 b). :func:`volume_characteristics` is the
characteristic table to hand to :func:`~aimd.evaluation.runner.run_characteristics`.

Example
-------
>>> sorted(k for k in VOLUME_APPLICABLE)
['description', 'efficiency', 'repeatability', 'robustness']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.errors import AimdError
from aimd.core.hashing import sha256_file
from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, RobustnessClaim
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.external_data import VolumeEvalSet, load_volume_eval_data
from aimd.evaluation.robustness import Robustness, artefact_parameters
from aimd.evaluation.runner import CHARACTERISTICS
from aimd.evaluation.scoring import evaluate, labels_from_probs, metric_name, summarize
from aimd.imaging.volume import Volume
from aimd.models.external.pipeline import VolumePipeline

VOLUME_APPLICABLE = ("description", "efficiency", "repeatability", "robustness")


def torso_phantom(size: int = 96, spacing: float = 4.0) -> Volume:
    """A non-head probe volume: an elliptic torso with two dark lungs and a bright spine (MR-like values).

    Example
    -------
    >>> torso_phantom(32).shape
    (32, 32, 32)
    """
    z, y, x = np.mgrid[:size, :size, :size].astype(np.float32) / (size - 1) - 0.5
    body = (x / 0.45) ** 2 + (y / 0.3) ** 2 < 1
    lungs = ((np.abs(x) - 0.2) / 0.14) ** 2 + (y / 0.18) ** 2 + (z / 0.4) ** 2 < 1
    spine = (x / 0.05) ** 2 + ((y - 0.2) / 0.05) ** 2 < 1
    arr = np.where(body, 120, 0) - np.where(lungs & body, 100, 0) + np.where(spine, 80, 0)
    noise = np.random.default_rng(0).normal(0, 3, arr.shape)
    return Volume(np.clip(arr + noise, 0, None).astype(np.int16), spacing=(spacing,) * 3, modality="MR")


def _flag(call: Callable[[], Any]) -> tuple[bool, str, Any]:
    try:
        value = call()
    except AimdError as err:
        return True, err.message, None
    return False, "accepted without a warning", value


class VolumeRobustness(Robustness):
    """000 §6.3.6 for a volume model, with the artefacts taken from the dataset's perturbed copies."""

    method = ("Evaluate the dataset's perturbed copies — TorchIO artefacts applied to the stored intensities "
              "before the model's own preprocessing, each seeded and recorded — against the clean cases, with "
              "bootstrap CIs (A.12.2 a); submit out-of-distribution volumes through the model's pipeline and "
              "record whether it rejects them (5.2.6 i); mix unqualified noise volumes into the correct ones "
              "and re-measure the correct ones (A.12.2 b).")

    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
        assert isinstance(claim, RobustnessClaim)
        copies: dict[tuple[str, float], EvalData] = ctx.extra.get("perturbed_data") or {}
        applied: dict[str, dict[str, Any]] = ctx.extra.get("perturbations") or {}
        ev = Evidence(seeds={cid: int(rec.get("seed", 0)) for cid, rec in applied.items()})
        name = metric_name(ctx.data.task)
        clean = evaluate(ctx.predictor, ctx.data)
        base = summarize(list(clean.values()), seed=ctx.seed, n_resamples=claims.bootstrap_resamples)
        ev.measurements["clean"] = base
        ev.measurements["perturbed_copies"] = {f"{a} {s:g}": len(d) for (a, s), d in copies.items()}
        rows: list[dict[str, Any]] = []
        series: list[Series] = []
        for art in claim.artefacts:
            levels = sorted(s for (a, s) in copies if a == art and any(np.isclose(s, c) for c in claim.severities))
            ys, lo, hi = [base["estimate"]], [base["ci_low"]], [base["ci_high"]]
            for sev in levels:
                ctx.note(f"robustness: {art} {sev:g}")
                scores = evaluate(ctx.predictor, copies[(art, sev)])
                s = summarize(list(scores.values()), seed=ctx.seed, n_resamples=claims.bootstrap_resamples)
                # paired: the clean mean over the same source cases as the copies
                drop = round(float(np.mean([clean[c] for c in scores])) - s["estimate"], 6)
                rows.append({"artefact": art, "severity": sev, **artefact_parameters(art, sev), name: s["estimate"],
                             "ci_low": s["ci_low"], "ci_high": s["ci_high"], "cases": s["n"], "drop": drop})
                ys.append(s["estimate"])
                lo.append(s["ci_low"])
                hi.append(s["ci_high"])
            if levels:
                series.append(Series(name=art, x=[0.0, *levels], y=ys, low=lo, high=hi))
            within = [r["drop"] for r in rows if r["artefact"] == art and r["severity"] <= claim.claimed_severity]
            worst = max(within) if within else None
            ev.check(f"{art}: metric drop up to severity {claim.claimed_severity}", f"≤ {claim.max_metric_drop}",
                     worst, worst is not None and worst <= claim.max_metric_drop,
                     "" if within else "the dataset holds no perturbed copy at or below the claimed severity")
        ev.tables.append(Table(title="Metric per artefact and severity, perturbed copies (A.12.2 a)",
                               columns=["artefact", "severity", name, "ci_low", "ci_high", "cases", "drop"],
                               rows=rows))
        if series:
            ev.plots.append(Plot(name="robustness_curves", kind="line", title=f"{name} vs artefact severity",
                                 x_label="severity (0 = clean)", y_label=name, series=series))
        self._ood(ctx, claim, ev)
        self._mixed(ctx, claim, ev, name)
        return ev

    @staticmethod
    def _ood(ctx: EvaluationContext, claim: RobustnessClaim, ev: Evidence) -> None:
        pipeline: VolumePipeline | None = ctx.extra.get("pipeline")
        spec = ctx.predictor.input_spec
        first = ctx.data.images[:1]
        other = "CT" if spec.modality != "CT" else "MR"
        rng = np.random.default_rng(ctx.seed)
        rows: list[dict[str, Any]] = []

        def body_part() -> str:
            assert pipeline is not None
            prepared = pipeline.prepare(torso_phantom(), where="torso phantom")
            labels = labels_from_probs(ctx.predictor.predict(prepared.inputs[None]), ctx.predictor.output_spec)
            return f"{float(np.mean(labels > 0)):.1%} of the grid labelled foreground"

        probes: dict[str, Callable[[], Any]] = {
            "corrupted": lambda: ctx.predictor.predict(
                np.where(rng.random(first.shape) < 0.01, np.nan, first).astype(np.float32)),
            "unpreprocessed": lambda: ctx.predictor.predict(first * 1000.0 - 500.0),
        }
        if pipeline is not None:
            probes["other_modality"] = lambda: pipeline.prepare(
                Volume(np.zeros((32, 32, 32), np.int16), spacing=(4.0, 4.0, 4.0), modality=other),
                where=f"{other} probe")
            probes["other_body_part"] = body_part
        for kind in ("other_modality", "wrong_spacing", "corrupted", "unpreprocessed", "other_body_part"):
            if kind == "wrong_spacing" and spec.spacing_mm is None:
                rows.append({"probe": kind, "flagged": None, "response": "not applicable: the pipeline resamples "
                             "every volume to the network grid and declares no spacing"})
                continue
            if kind not in probes:
                rows.append({"probe": kind, "flagged": None, "response": "not applicable: no pipeline in the context"})
                continue
            flagged, text, value = _flag(probes[kind])
            rows.append({"probe": kind, "flagged": flagged, "response": value if isinstance(value, str) and not
                         flagged else text})
        ev.tables.append(Table(title="Out-of-distribution probes through the pipeline (5.2.6 i)",
                               columns=["probe", "flagged", "response"], rows=rows))
        for row in rows:
            if row["probe"] in claim.ood_must_flag:
                ev.check(f"OOD {row['probe']} flagged", True, row["flagged"], row["flagged"] is True,
                         str(row["response"]))


def volume_characteristics() -> dict[str, Characteristic]:
    """The runner's characteristic table with robustness measured on perturbed copies (volume models).

    Example
    -------
    >>> type(volume_characteristics()["robustness"]).__name__
    'VolumeRobustness'
    """
    return {**CHARACTERISTICS, "robustness": VolumeRobustness()}


def volume_context(pipeline: VolumePipeline, dataset: str | Path, out_dir: str | Path, *,
                   description: dict[str, Any] | None = None, label: str = "", seed: int = 0, threads: int = 2,
                   progress: Callable[[str], object] | None = None) -> EvaluationContext:
    """An :class:`EvaluationContext` for ``pipeline`` on the mask dataset ``dataset``.

    The clean test cases are the evaluation data; the perturbed copies go to
    ``ctx.extra["perturbed_data"]`` and the pipeline to ``ctx.extra["pipeline"]`` for
    :class:`VolumeRobustness`; ``ctx.extra["characteristics"]`` is the table to run
    (:func:`volume_characteristics`). Every preparation record is kept in ``ctx.extra["data_identity"]``.

    Example
    -------
    >>> from aimd.models.external import DeepBet
    >>> ctx = volume_context(DeepBet(grid=160), "colin27-dataset/", "report/")  # doctest: +SKIP
    >>> ctx.data.images.shape  # doctest: +SKIP
    (1, 1, 160, 160, 160)
    """
    sets: VolumeEvalSet = load_volume_eval_data(dataset, pipeline, progress=progress)
    predictor = pipeline.predictor
    source = predictor.metadata.get("source")
    model_file = Path(str(source)) if source else None
    label = label or str(predictor.metadata.get("model") or (model_file.name if model_file else "model"))
    root = Path(dataset).parent if Path(dataset).is_file() else Path(dataset)
    ctx = EvaluationContext(predictor=predictor, data=sets.clean, out_dir=Path(out_dir), network=None,
                            model_file=model_file, description=description, model_label=label, seed=seed,
                            threads=threads, progress=progress, dataset_dir=root)
    ctx.extra["pipeline"] = pipeline
    ctx.extra["characteristics"] = volume_characteristics()
    ctx.extra["perturbed_data"] = sets.perturbed
    ctx.extra["perturbations"] = sets.perturbations
    ctx.extra["model_identity"] = {
        "path": str(model_file) if model_file else None, "label": label, "adapter": predictor.metadata.get("adapter"),
        "file": str(model_file) if model_file else None,
        "file_sha256": sha256_file(model_file) if model_file and model_file.is_file() else None,
        **{k: v for k, v in predictor.metadata.items() if isinstance(v, str | int | float) and k != "adapter"}}
    ctx.extra["data_identity"] = {"dataset": str(dataset), "splits": ["test"], "perturbed_copies": sets.perturbations,
                                  "preparation": sets.records}
    return ctx


def deepbet_context(dataset: str | Path, out_dir: str | Path, *, grid: int = 256, seed: int = 0, threads: int = 2,
                    progress: Callable[[str], object] | None = None) -> EvaluationContext:
    """deepbet (``model.pt`` on a ``grid``³ input) on a mask dataset, with its derived 000 §4 description.

    Example
    -------
    >>> from aimd.evaluation import run_characteristics, parse_claims
    >>> ctx = deepbet_context("colin27-dataset/", "report/", grid=192)  # doctest: +SKIP
    >>> results = run_characteristics(ctx, parse_claims("efficiency: {runs: 3}", where="claims"),
    ...                               only=["efficiency"], registry=volume_characteristics())  # doctest: +SKIP
    """
    from aimd.models.external.deepbet import DeepBet, describe_deepbet

    bet = DeepBet(grid=grid)
    return volume_context(bet, dataset, out_dir, description=describe_deepbet(bet), seed=seed, threads=threads,
                          progress=progress)


__all__ = ["VOLUME_APPLICABLE", "VolumeRobustness", "deepbet_context", "torso_phantom", "volume_characteristics",
           "volume_context"]
