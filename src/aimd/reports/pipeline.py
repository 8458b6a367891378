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

import contextlib
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from aimd.core.distributed import ray_session
from aimd.core.errors import InvalidInputError
from aimd.core.logging import get_logger
from aimd.evaluation.claims import Claims, ClaimsHeader, load_claims, parse_claims
from aimd.evaluation.external import named_context, parse_external
from aimd.evaluation.loading import DEFAULT_SPLITS, build_context, reference_model
from aimd.evaluation.runner import run_characteristics
from aimd.reports.figures import render_figures
from aimd.reports.model import Report, build_report
from aimd.reports.render import write_html, write_json, write_pdf

_log = get_logger("aimd.reports.pipeline")

# the reference dataset is small: validation cases (used only to pick the best epoch) join the test cases so
# each site holds at least two held-out cases for the subgroup test (000 A.12.1 a)
REFERENCE_SPLITS: tuple[str, ...] = ("val", "test")

REFERENCE_ORIGIN = "example claims written by aimd for its own reference model — not a provider declaration"

# Every value equals the template default (`aimd evaluate claims-template`) unless its line says why it differs.
REFERENCE_CLAIMS = f"""\
# Claims of aimd's built-in reference model (unet-small, CT body outline, phantom data).
origin: "{REFERENCE_ORIGIN}"
model: {{name: unet-small (body), version: "0.1.0", provider: aimd}}
hardware: "2 CPU cores, no GPU"
seed: 0
bootstrap_resamples: 1000
description:
  max_missing_items: 3  # aimd's description of a phantom-trained model leaves clinical §4 items open (gaps)
trainability:
  settings: {{epochs: 3, max_steps_per_epoch: 4, lr: 0.001}}
  min_relative_improvement: 0.05  # the model is already trained to its plateau: 3 short epochs improve it less
  divergence_tolerance: 0.5
scalability:
  thread_counts: [1, 2]
  batch_sizes: [1, 8]  # two batch sizes keep the whole run within 10 min on 2 cores
  runs: 5
  min_images_per_s: 20  # the reference model's throughput claim on 2 CPU cores
transferability:
  target: organs
  methods: [full, lora]
  lora_rank: 4
  min_metric: {{full: 0.65, lora: 0.4}}
  min_gain_over_scratch: {{full: -0.02}}
efficiency:
  max_gflops: 0.5  # claimed limit (template: no claim)
  max_parameters: 1000000  # claimed limit (template: no claim)
  max_memory_mb: 64  # claimed limit (template: no claim)
  max_size_mb: 8  # claimed limit (template: no claim)
  max_latency_p95_ms: 250  # claimed limit (template: no claim)
  runs: 20
  max_int8_metric_drop: 0.05  # claimed limit (template: no claim)
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
  max_mixed_metric_drop: 0.01  # a per-slice model: mixing in other samples must leave the qualified ones unchanged
adversarial:
  attacks: [fgsm, pgd, square]
  claimed_epsilon: 0.005
  max_metric_drop: 0.1
privacy:
  max_membership_auc: 0.6
  forbid_egress: true
generalization:
  min_metric: 0.5
  alpha: 0.05
  stress_min_metric: 0.3  # small targets are harder: a lower baseline for the stress samples (template: none)
"""


def _verdict_rows(report: Report) -> list[dict[str, Any]]:
    return [
        {
            "clause": r.clause,
            "characteristic": r.title,
            "verdict": r.verdict.value,
            "seconds": r.seconds,
            "reason": r.reason,
        }
        for r in report.summary
    ]


def claims_origin(claims: Any, source: str) -> str:
    """Who set the bar, as the report's first page and the verdict table state it.

    Example
    -------
    >>> from aimd.evaluation import Claims
    >>> claims_origin(Claims(), "none (no claims declared)")
    'no claims declared: every characteristic is measured, none judged'
    """
    stated = str(getattr(claims, "origin", "") or "").strip()
    if stated:
        return stated
    if source.startswith("none"):
        return "no claims declared: every characteristic is measured, none judged"
    return f"claims from {source}; the file does not say who wrote them (set origin:)"


def write_report(report: Report, out_dir: Path, *, pdf: bool = True) -> dict[str, str | None]:
    """Draw the figures and write report.json, report.schema.json, report.html and (optionally) report.pdf."""
    report.figures = render_figures(report, out_dir)
    json_path, schema = write_json(report, out_dir)
    html = write_html(report, out_dir)
    pdf_path = write_pdf(report, out_dir) if pdf else None
    return {
        "report_json": str(json_path),
        "report_schema": str(schema),
        "report_html": str(html),
        "report_pdf": str(pdf_path) if pdf_path else None,
    }


def evaluate_model(
    out_dir: str | Path,
    *,
    model: str | Path | None = None,
    data: str | Path | None = None,
    claims: str | Path | Claims | None = None,
    description: str | Path | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    splits: Sequence[str] = DEFAULT_SPLITS,
    seed: int = 0,
    threads: int = 2,
    pdf: bool = True,
    cache_dir: str | Path | None = None,
    progress: Callable[[str], object] | None = None,
    ray: str | None = None,
) -> dict[str, Any]:
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
        Claims YAML path or :class:`Claims`; omitted: the reference claims for the reference model
        (:data:`REFERENCE_CLAIMS`, stated on the report as example claims aimd wrote for its own
        model), no claims otherwise (every characteristic is then measured but not judged).
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
    ray:
        Run each perturbation and attack budget as a Ray task: ``"local"`` or a cluster address
        (:mod:`aimd.evaluation.support.parallel`); the report's numbers are the same as without.

    Returns
    -------
    dict
        Report paths, the verdict table, verdict counts and the duration.
    """
    if (model is None) != (data is None):
        raise InvalidInputError(
            "pass both --model and --data, or neither (built-in reference model)",
            where="--model/--data",
            hint="e.g. --model runs/seg --data phantoms/",
        )
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
        if isinstance(claims, ClaimsHeader):
            claims_obj, source = claims, "in memory"
        elif claims is not None:
            claims_obj, source = load_claims(claims), str(claims)
        origin = claims_origin(claims_obj, source)
        assert claims_obj is not None and data is not None
        external = parse_external(model)
        if external is not None:
            ctx = named_context(external[0], data, out, grid=external[1], seed=seed, threads=threads, progress=progress)
        else:
            ctx = build_context(
                model, data, out, description=description, splits=splits, seed=seed, threads=threads, progress=progress
            )
        ctx.ray = ray
        with contextlib.nullcontext() if ray is None else ray_session(ray):
            results = run_characteristics(ctx, claims_obj, only=only, skip=skip, progress=progress)
        report = build_report(
            ctx,
            claims_obj,
            results,
            started=started,
            claims_source=source,
            claims_origin=origin,
            duration_s=time.perf_counter() - t0,
        )
        if progress is not None:
            progress("writing the report" + (" (HTML, PDF)" if pdf else " (HTML)"))
        paths = write_report(report, out, pdf=pdf)
    finally:
        torch.set_num_threads(previous)
    _log.info("evaluation.done", out=str(out), counts=report.counts(), seconds=report.header.duration_s)
    return {
        "out": str(out),
        **paths,
        "verdicts": _verdict_rows(report),
        "counts": report.counts(),
        "claims_origin": report.header.claims["origin"],
        "duration_s": report.header.duration_s,
    }


def run_evaluation_demo(out_dir: str | Path, *, progress: Callable[[str], object] | None = None) -> dict[str, Any]:
    """The evaluation stage of ``aimd demo``: the reference model against its claims, small settings.

    Returns the report paths and the verdict table (see :func:`evaluate_model`).
    """
    claims = parse_claims(REFERENCE_CLAIMS, where="reference claims")
    claims.efficiency.runs = 10
    claims.robustness.severities = [0.5, 1.0]
    claims.robustness.sample_images = 64
    return evaluate_model(out_dir, claims=claims, progress=progress)


__all__ = [
    "REFERENCE_CLAIMS",
    "REFERENCE_ORIGIN",
    "REFERENCE_SPLITS",
    "claims_origin",
    "evaluate_model",
    "run_evaluation_demo",
    "write_report",
]
