"""The conformity report (000 §6): header, one section per clause, and the verdict summary.

A :class:`Report` is built once from the evaluation results and turned into JSON, HTML and PDF
by the renderers; its JSON Schema is exported from the model (:func:`report_schema`), never
written by hand. The header records what makes the report reproducible: model identity and
hashes, data hashes, claims, versions, seeds, hardware and duration.

Example
-------
>>> schema = report_schema()
>>> sorted(schema["properties"])[1:4]
['format', 'header', 'sections']
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from aimd import __version__
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import CharacteristicResult, Verdict

REPORT_FORMAT = "aimd-conformity-report"
_PACKAGES = (
    "torch",
    "numpy",
    "scipy",
    "onnx",
    "onnxruntime",
    "torchio",
    "monai",
    "pydantic",
    "matplotlib",
    "jinja2",
    "weasyprint",
)


class SummaryRow(BaseModel):
    """One line of the verdict table."""

    model_config = ConfigDict(extra="forbid")

    clause: str
    title: str
    verdict: Verdict
    reason: str
    seconds: float


class ReportHeader(BaseModel):
    """Everything needed to reproduce the report."""

    model_config = ConfigDict(extra="forbid")

    title: str
    created: str
    model: dict[str, Any]
    data: dict[str, Any]
    claims: dict[str, Any]
    versions: dict[str, str]
    seeds: dict[str, int]
    hardware: dict[str, Any]
    duration_s: float


class Report(BaseModel):
    """A conformity report: header, summary and one section per 000 §6 clause."""

    model_config = ConfigDict(extra="forbid")

    format: str = REPORT_FORMAT
    version: str = "1"
    header: ReportHeader
    summary: list[SummaryRow]
    sections: list[CharacteristicResult]
    figures: dict[str, str] = Field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of sections per verdict."""
        out = {v.value: 0 for v in Verdict}
        for s in self.sections:
            out[s.verdict.value] += 1
        return out


def report_schema() -> dict[str, Any]:
    """JSON Schema of :class:`Report` (written next to every report.json)."""
    return Report.model_json_schema()


def versions() -> dict[str, str]:
    """aimd, Python and key package versions."""
    out = {"aimd": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def hardware() -> dict[str, Any]:
    """The machine the evaluation ran on."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "python_executable": sys.executable,
    }


def data_digest(hashes: dict[str, str]) -> str:
    """One SHA-256 over the sorted ``path: sha256`` lines of every data file.

    Example
    -------
    >>> len(data_digest({"a": "00"}))
    64
    """
    text = "\n".join(f"{k}: {hashes[k]}" for k in sorted(hashes))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_report(
    ctx: EvaluationContext,
    claims: Any,
    results: list[CharacteristicResult],
    *,
    started: datetime,
    claims_source: str,
    duration_s: float,
    claims_origin: str = "",
) -> Report:
    """Assemble the report of one evaluation; ``claims_origin`` (default: the claims' own ``origin``) says who
    set the bar and is printed on the report's first page."""
    claims_json = claims.model_dump(mode="json")
    claims_sha = hashlib.sha256(json.dumps(claims_json, sort_keys=True).encode("utf-8")).hexdigest()
    model = dict(
        ctx.model_identity
        or {
            "label": ctx.model_label,
            **{k: v for k, v in ctx.predictor.metadata.items() if isinstance(v, str | int | float)},
        }
    )
    model["input_spec"] = ctx.predictor.input_spec.model_dump(mode="json")
    model["output_spec"] = ctx.predictor.output_spec.model_dump(mode="json")
    data = {
        "cases": len(ctx.data.cases),
        "images": len(ctx.data),
        "task": ctx.data.task,
        "sites": sorted(set(ctx.data.sites.values())),
        "files": ctx.data.hashes,
        "digest_sha256": data_digest(ctx.data.hashes),
        **ctx.data_identity,
    }
    seeds = {"master": ctx.seed}
    for r in results:
        for name, value in r.evidence.seeds.items():
            seeds[f"{r.key}.{name}"] = value
    header = ReportHeader(
        title=f"Conformity report — {ctx.model_label or 'model'} (000 §6)",
        created=started.astimezone(UTC).isoformat(timespec="seconds"),
        model=model,
        data=data,
        claims={
            "origin": claims_origin or claims_json.get("origin") or "not stated in the claims",
            "source": claims_source,
            "sha256": claims_sha,
            "content": claims_json,
        },
        versions=versions(),
        seeds=seeds,
        hardware={**hardware(), "network_egress": ctx.network_isolation.get("statement", "not recorded")},
        duration_s=round(duration_s, 3),
    )
    summary = [
        SummaryRow(clause=r.clause, title=r.title, verdict=r.verdict, reason=r.reason, seconds=r.seconds)
        for r in results
    ]
    return Report(header=header, summary=summary, sections=results)


__all__ = [
    "REPORT_FORMAT",
    "Report",
    "ReportHeader",
    "SummaryRow",
    "build_report",
    "data_digest",
    "hardware",
    "report_schema",
    "versions",
]
