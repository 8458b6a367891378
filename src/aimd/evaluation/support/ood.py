"""Out-of-distribution probes (000 §5.2.6 i) and the record of whether the model flagged each one.

A probe is an input the model was not made for — another modality, a wrong pixel spacing,
corrupted (NaN) pixels, unpreprocessed raw values, another body part. It counts as *flagged* when
the model's input checks reject it with an :class:`~aimd.core.errors.AimdError`. For a 2-D model
the probes go straight to the predictor; for a third-party volume model they go through its own
pipeline (:class:`~aimd.models.external.VolumePipeline`), as a user's volume would.

Example
-------
>>> flagged(lambda: 1 / 1)
(False, 'accepted without a warning', 1.0)
>>> torso_phantom(32).shape
(32, 32, 32)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aimd.core.errors import AimdError
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Table
from aimd.evaluation.support.scoring import labels_from_probs
from aimd.imaging.volume import Volume

PROBES = ("other_modality", "wrong_spacing", "corrupted", "unpreprocessed", "other_body_part")
Probe = Callable[[], Any] | str


def flagged(call: Callable[[], Any]) -> tuple[bool, str, Any]:
    """Run ``call``: ``(True, message, None)`` when it raised an AimdError, else ``(False, note, value)``."""
    try:
        value = call()
    except AimdError as err:
        return True, err.message, None
    return False, "accepted without a warning", value


def torso_phantom(size: int = 96, spacing: float = 4.0) -> Volume:
    """A non-head probe volume: an elliptic torso with two dark lungs and a bright spine (MR-like values)."""
    z, y, x = np.mgrid[:size, :size, :size].astype(np.float32) / (size - 1) - 0.5
    body = (x / 0.45) ** 2 + (y / 0.3) ** 2 < 1
    lungs = ((np.abs(x) - 0.2) / 0.14) ** 2 + (y / 0.18) ** 2 + (z / 0.4) ** 2 < 1
    spine = (x / 0.05) ** 2 + ((y - 0.2) / 0.05) ** 2 < 1
    arr = np.where(body, 120, 0) - np.where(lungs & body, 100, 0) + np.where(spine, 80, 0)
    noise = np.random.default_rng(0).normal(0, 3, arr.shape)
    return Volume(np.clip(arr + noise, 0, None).astype(np.int16), spacing=(spacing,) * 3, modality="MR")


def _common(ctx: EvaluationContext) -> dict[str, Probe]:
    first = ctx.data.images[:1]
    rng = np.random.default_rng(ctx.seed)
    return {
        "corrupted": lambda: ctx.predictor.predict(
            np.where(rng.random(first.shape) < 0.01, np.nan, first).astype(np.float32)
        ),
        "unpreprocessed": lambda: ctx.predictor.predict(first * 1000.0 - 500.0),
    }


def slice_probes(ctx: EvaluationContext) -> dict[str, Probe]:
    """Probes for a 2-D model, sent to its predictor (a string: why the probe does not apply)."""
    spec = ctx.predictor.input_spec
    h, w = (int(s) for s in ctx.data.images.shape[2:4])
    raw = np.zeros((1, h, w), np.int16)
    spacing = (spec.spacing_mm[0], spec.spacing_mm[1], 1.0) if spec.spacing_mm else (1.0, 1.0, 1.0)
    other = "MR" if spec.modality != "MR" else "CT"
    yy, xx = np.mgrid[:h, :w]
    ring = np.abs(np.hypot(yy - h / 2, xx - w / 2) - min(h, w) / 3) < 2
    body = np.repeat(ring[None, None].astype(np.float32), spec.channels, axis=1)
    probes: dict[str, Probe] = {
        "other_modality": lambda: ctx.predictor.predict_volume(Volume(raw, spacing=spacing, modality=other)),
        "wrong_spacing": "not applicable: the model declares no pixel spacing",
        **_common(ctx),
        "other_body_part": lambda: ctx.predictor.predict(body),
    }
    if spec.spacing_mm is not None:
        wrong = (spacing[0] * 4, spacing[1] * 4, 1.0)
        probes["wrong_spacing"] = lambda: ctx.predictor.predict_volume(
            Volume(raw, spacing=wrong, modality=spec.modality)
        )
    return probes


def pipeline_probes(ctx: EvaluationContext) -> dict[str, Probe]:
    """Probes for a volume model, sent through its own pipeline."""
    pipeline = ctx.pipeline
    assert pipeline is not None
    spec = ctx.predictor.input_spec
    other = "CT" if spec.modality != "CT" else "MR"

    def body_part() -> str:
        prepared = pipeline.prepare(torso_phantom(), where="torso phantom")
        labels = labels_from_probs(ctx.predictor.predict(prepared.inputs[None]), ctx.predictor.output_spec)
        return f"{float(np.mean(labels > 0)):.1%} of the grid labelled foreground"

    return {
        "other_modality": lambda: pipeline.prepare(
            Volume(np.zeros((32, 32, 32), np.int16), spacing=(4.0, 4.0, 4.0), modality=other), where=f"{other} probe"
        ),
        "wrong_spacing": (
            "not applicable: the pipeline resamples every volume to the network grid and declares no spacing"
        )
        if spec.spacing_mm is None
        else "not applicable: no wrong-spacing probe for volume pipelines",
        **_common(ctx),
        "other_body_part": body_part,
    }


def record_probes(ctx: EvaluationContext, must_flag: list[str], ev: Evidence) -> None:
    """Send every probe, tabulate the responses and check those the claim says must be flagged."""
    probes = pipeline_probes(ctx) if ctx.pipeline is not None else slice_probes(ctx)
    rows: list[dict[str, Any]] = []
    for kind in PROBES:
        probe = probes[kind]
        if isinstance(probe, str):
            rows.append({"probe": kind, "flagged": None, "response": probe})
            continue
        was_flagged, text, value = flagged(probe)
        rows.append(
            {
                "probe": kind,
                "flagged": was_flagged,
                "response": value if isinstance(value, str) and not was_flagged else text,
            }
        )
    title = "Out-of-distribution probes" + (" through the pipeline" if ctx.pipeline is not None else "")
    ev.tables.append(Table(title=f"{title} (5.2.6 i)", columns=["probe", "flagged", "response"], rows=rows))
    for row in rows:
        if row["probe"] not in must_flag:
            continue
        if row["flagged"] is None:
            ev.not_evaluated(f"OOD {row['probe']} flagged", True, str(row["response"]))
        else:
            ev.check(f"OOD {row['probe']} flagged", True, row["flagged"], row["flagged"] is True, str(row["response"]))


__all__ = ["PROBES", "flagged", "pipeline_probes", "record_probes", "slice_probes", "torso_phantom"]
