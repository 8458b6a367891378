"""``aimd evaluate``: model + data + claims → the nine characteristics → report.json/html/pdf.

:func:`evaluate_model` runs one evaluation end to end. Without a model it evaluates aimd's
built-in reference model on its phantom data (trained once and cached) against the reference
claims in :data:`REFERENCE_CLAIMS`. :func:`run_evaluation_demo` is the small-settings version
``aimd demo`` ends with.

Example
-------
>>> from aimd.evaluation import parse_claims
>>> parse_claims(REFERENCE_CLAIMS, where="reference").generalization.min_metric
0.5
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from aimd.core.errors import InvalidInputError
from aimd.core.logging import get_logger
from aimd.evaluation.claims import Claims, load_claims, parse_claims
from aimd.evaluation.loading import DEFAULT_SPLITS, build_context, reference_model
from aimd.evaluation.runner import CLAUSE_KEYS, run_characteristics
from aimd.reports.figures import render_figures
from aimd.reports.model import Report, build_report
from aimd.reports.render import write_html, write_json, write_pdf

_log = get_logger("aimd.reports.pipeline")

# the reference dataset is small: validation cases (used only to pick the best epoch) join the test cases so
# each site holds at least two held-out cases for the subgroup test (000 A.12.1 a)
REFERENCE_SPLITS: tuple[str, ...] = ("val", "test")

REFERENCE_CLAIMS = """\
# Claims of aimd's built-in reference model (unet-small, CT body outline, phantom data).
model: {name: unet-small (body), version: "0.1.0", provider: aimd}
hardware: "2 CPU cores, no GPU"
seed: 0
bootstrap_resamples: 1000
description:
  max_missing_items: 3
trainability:
  settings: {epochs: 3, max_steps_per_epoch: 4, lr: 0.001}
  min_relative_improvement: 0.05
  divergence_tolerance: 0.5
scalability:
  thread_counts: [1, 2]
  batch_sizes: [1, 8]
  runs: 5
  min_images_per_s: 20
transferability:
  target: organs
  settings: {case_fraction: 0.5, epochs: 2, max_steps_per_epoch: 80, batch_size: 8, lr: 0.003, t0: 2, augment: []}
  methods: [full, lora]
  lora_rank: 4
  min_metric: {full: 0.65, lora: 0.4}
  min_gain_over_scratch: {full: -0.02}
efficiency:
  max_gflops: 0.5
  max_parameters: 1000000
  max_memory_mb: 64
  max_size_mb: 8
  max_latency_p95_ms: 250
  runs: 20
  max_int8_metric_drop: 0.05
repeatability:
  repeats: 5
  max_abs_deviation: 1.0e-6
  thread_counts: [1, 2]
  max_thread_deviation: 1.0e-4
  max_runtime_deviation: 1.0e-3
  max_label_disagreement: 0.001
robustness:
  severities: [0.25, 0.5, 1.0]
  claimed_severity: 0.5
  max_metric_drop: 0.1
  max_mixed_metric_drop: 0.01
adversarial:
  attacks: [fgsm, pgd]
  epsilons: [0.005, 0.01, 0.02]
  claimed_epsilon: 0.01
  max_metric_drop: 0.05
privacy:
  max_membership_auc: 0.65
  forbid_egress: true
generalization:
  min_metric: 0.5
  alpha: 0.05
  stress_min_metric: 0.3
"""


def _verdict_rows(report: Report) -> list[dict[str, Any]]:
    return [{"clause": r.clause, "characteristic": r.title, "verdict": r.verdict.value, "seconds": r.seconds,
             "reason": r.reason} for r in report.summary]


def write_report(report: Report, out_dir: Path, *, pdf: bool = True) -> dict[str, str | None]:
    """Draw the figures and write report.json, report.schema.json, report.html and (optionally) report.pdf."""
    report.figures = render_figures(report, out_dir)
    json_path, schema = write_json(report, out_dir)
    html = write_html(report, out_dir)
    pdf_path = write_pdf(report, out_dir) if pdf else None
    return {"report_json": str(json_path), "report_schema": str(schema), "report_html": str(html),
            "report_pdf": str(pdf_path) if pdf_path else None}


EXTERNAL_MODELS = ("deepbet",)


def external_model(model: str | Path | None) -> tuple[str, int] | None:
    """``("deepbet", grid)`` when ``model`` names a third-party pipeline aimd knows (``deepbet`` or
    ``deepbet:GRID``) rather than an existing path; ``None`` otherwise.

    Example
    -------
    >>> external_model("deepbet:192"), external_model("runs/seg")
    (('deepbet', 192), None)
    """
    if model is None or Path(model).exists():
        return None
    name, _, grid = str(model).partition(":")
    if name not in EXTERNAL_MODELS:
        return None
    if grid and not grid.isdigit():
        raise InvalidInputError(f"grid {grid!r} is not a number", where="--model",
                                hint="use deepbet or deepbet:GRID with GRID a multiple of 32, e.g. deepbet:192")
    return name, int(grid or 256)


def evaluate_model(out_dir: str | Path, *, model: str | Path | None = None, data: str | Path | None = None,
                   claims: str | Path | Claims | None = None, description: str | Path | None = None,
                   only: Sequence[str] = (), skip: Sequence[str] = (), splits: Sequence[str] = DEFAULT_SPLITS,
                   seed: int = 0, threads: int = 2, pdf: bool = True, cache_dir: str | Path | None = None,
                   progress: Callable[[str], object] | None = None) -> dict[str, Any]:
    """Evaluate a model against its claims and write the conformity report into ``out_dir``.

    Parameters
    ----------
    out_dir:
        Report folder (created).
    model, data:
        Model (run folder, TorchScript, ONNX, MONAI bundle, or ``deepbet[:GRID]`` for the installed
        deepbet brain extraction on a mask dataset) and dataset folder; both omitted means the
        built-in reference model on its phantom data.
    claims:
        Claims YAML path or :class:`Claims`; omitted: the reference claims for the reference model,
        no claims otherwise (every characteristic is then measured but not judged).
    description:
        The model's 000 §4 description JSON.
    only, skip:
        Characteristic keys to run / leave out.
    splits:
        Held-out dataset splits.
    seed, threads:
        Master seed and CPU threads.
    pdf:
        Also write report.pdf (WeasyPrint).

    Returns
    -------
    dict
        Report paths, the verdict table, verdict counts and the duration.
    """
    if (model is None) != (data is None):
        raise InvalidInputError("pass both --model and --data, or neither (built-in reference model)",
                                where="--model/--data", hint="e.g. --model runs/seg --data phantoms/")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if model is None:
            model, data = reference_model(cache_dir, threads=threads, seed=seed, progress=progress)
            splits = REFERENCE_SPLITS if tuple(splits) == DEFAULT_SPLITS else splits
            claims_obj = parse_claims(REFERENCE_CLAIMS, where="reference claims") if claims is None else None
            source = "aimd reference claims"
        else:
            claims_obj = Claims() if claims is None else None
            source = "none (no claims declared)"
        if isinstance(claims, Claims):
            claims_obj, source = claims, "in memory"
        elif claims is not None:
            claims_obj, source = load_claims(claims), str(claims)
        assert claims_obj is not None and data is not None
        external = external_model(model)
        if external is not None:
            from aimd.evaluation.external import VOLUME_APPLICABLE, deepbet_context

            ctx = deepbet_context(data, out, grid=external[1], seed=seed, threads=threads, progress=progress)
            # an inference-only pipeline: the characteristics that need its training run or a 2-D
            # slice model are reported as not evaluated unless asked for by name
            if not only:
                only = VOLUME_APPLICABLE
                reason = ("not applicable to an inference-only third-party pipeline: needs the model's training "
                          "run or a 2-D slice model (name it with --only to try)")
                ctx.extra["not_applicable"] = {k: reason for k in CLAUSE_KEYS if k not in VOLUME_APPLICABLE}
        else:
            ctx = build_context(model, data, out, description=description, splits=splits, seed=seed,
                                threads=threads, progress=progress)
            ctx.extra["data_identity"] = {"dataset": str(data), "splits": list(splits)}
        results = run_characteristics(ctx, claims_obj, only=only, skip=skip, progress=progress,
                                      registry=ctx.extra.get("characteristics"))
        report = build_report(ctx, claims_obj, results, started=started, claims_source=source,
                              duration_s=time.perf_counter() - t0)
        paths = write_report(report, out, pdf=pdf)
    finally:
        torch.set_num_threads(previous)
    _log.info("evaluation.done", out=str(out), counts=report.counts(), seconds=report.header.duration_s)
    return {"out": str(out), **paths, "verdicts": _verdict_rows(report), "counts": report.counts(),
            "duration_s": report.header.duration_s}


def run_evaluation_demo(out_dir: str | Path, *, progress: Callable[[str], object] | None = None) -> dict[str, Any]:
    """The evaluation stage of ``aimd demo``: the reference model against its claims, small settings.

    Returns the report paths and the verdict table (see :func:`evaluate_model`).
    """
    claims = parse_claims(REFERENCE_CLAIMS, where="reference claims")
    assert claims.efficiency is not None and claims.robustness is not None
    claims.efficiency.runs = 10
    claims.robustness.severities = [0.5, 1.0]
    claims.robustness.sample_images = 64
    return evaluate_model(out_dir, claims=claims, progress=progress)


__all__ = ["REFERENCE_CLAIMS", "REFERENCE_SPLITS", "evaluate_model", "run_evaluation_demo", "write_report"]
