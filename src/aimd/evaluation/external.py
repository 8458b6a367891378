"""Evaluate a third-party, inference-only volume model (000 §6.1–§6.3) on a mask dataset.

A third-party model reaches aimd as a network file plus its own preprocessing; there is no
training run, so the characteristics that need one (trainability, transferability) do not apply
— each characteristic's :class:`~aimd.evaluation.base.Applicability` says so in the report.
:func:`volume_context` opens any :class:`~aimd.models.external.VolumePipeline` on a mask dataset
(:func:`~aimd.evaluation.external_data.write_mask_dataset`) as an :class:`EvaluationContext` whose
items are whole 3-D network inputs, with the dataset's perturbed copies (robustness, A.12.2 a)
and the pipeline (out-of-distribution probes, 5.2.6 i) as typed fields. :func:`named_context`
does so for a pipeline registered in :mod:`aimd.evaluation.pipelines` (e.g. ``deepbet:192``),
with the 000 §4 description aimd derives from its file.

Example
-------
>>> parse_external("deepbet:192"), parse_external("runs/seg")
(('deepbet', 192), None)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.external_data import VolumeEvalSet, load_volume_eval_data
from aimd.evaluation.pipelines import registered
from aimd.models.external.pipeline import VolumePipeline


def parse_external(model: str | Path | None) -> tuple[str, int | None] | None:
    """``(name, grid)`` when ``model`` names a registered pipeline (``NAME`` or ``NAME:GRID``) rather than an
    existing path; ``None`` otherwise."""
    if model is None or Path(model).exists():
        return None
    name, _, grid = str(model).partition(":")
    entry = registered().get(name)
    if entry is None:
        return None
    if grid and not grid.isdigit():
        raise InvalidInputError(f"grid {grid!r} is not a number", where="--model", hint=f"use {entry.grid_hint}")
    return name, int(grid) if grid else None


def volume_context(
    pipeline: VolumePipeline,
    dataset: str | Path,
    out_dir: str | Path,
    *,
    description: dict[str, Any] | None = None,
    description_source: str | None = None,
    label: str = "",
    seed: int = 0,
    threads: int = 2,
    progress: Callable[[str], object] | None = None,
) -> EvaluationContext:
    """An :class:`EvaluationContext` for ``pipeline`` on the mask dataset ``dataset``.

    The clean test cases are the evaluation data; the perturbed copies and their records, the
    pipeline and every preparation record are typed fields of the context.

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
    identity = {
        "path": str(model_file) if model_file else None,
        "label": label,
        "adapter": predictor.metadata.get("adapter"),
        "file": str(model_file) if model_file else None,
        "file_sha256": sha256_file(model_file) if model_file and model_file.is_file() else None,
        **{k: v for k, v in predictor.metadata.items() if isinstance(v, str | int | float) and k != "adapter"},
    }
    return EvaluationContext(
        predictor=predictor,
        data=sets.clean,
        out_dir=Path(out_dir),
        network=None,
        model_file=model_file,
        description=description,
        description_source="aimd" if description_source == "aimd" else "provider" if description is not None else None,
        model_label=label,
        model_identity=identity,
        data_identity={
            "dataset": str(dataset),
            "splits": ["test"],
            "perturbed_copies": sets.perturbations,
            "preparation": sets.records,
        },
        seed=seed,
        threads=threads,
        progress=progress,
        dataset_dir=root,
        pipeline=pipeline,
        perturbed=sets.perturbed,
        perturbations=sets.perturbations,
    )


def named_context(
    name: str,
    dataset: str | Path,
    out_dir: str | Path,
    *,
    grid: int | None = None,
    seed: int = 0,
    threads: int = 2,
    progress: Callable[[str], object] | None = None,
) -> EvaluationContext:
    """The registered pipeline ``name`` on a mask dataset, with the 000 §4 description aimd derives for it.

    Example
    -------
    >>> ctx = named_context("deepbet", "colin27-dataset/", "report/", grid=192)  # doctest: +SKIP
    """
    entry = registered().get(name)
    if entry is None:
        raise InvalidInputError(
            f"no third-party pipeline named {name!r}",
            where="--model",
            hint=f"choose from {', '.join(sorted(registered()))}",
        )
    pipeline = entry.build(grid)
    return volume_context(
        pipeline,
        dataset,
        out_dir,
        description=entry.describe(pipeline),
        description_source="aimd",
        seed=seed,
        threads=threads,
        progress=progress,
    )


__all__ = ["named_context", "parse_external", "volume_context"]
