"""The IQ report (002 §3.5, App. C): basic information, one section per area, deviations, evidence index,
clause traceability and the conclusion — JSON (+ schema), HTML and PDF.

Sections follow App. C: C.1 basic information, C.2 security, C.3 reliability, C.4 performance, C.5 logs
and monitoring, C.6 version management, C.7 attachments; resources and function (002 §6.1) come first.

Example
-------
>>> sorted(IQReport.model_json_schema()["properties"])[:3]
['areas', 'basic', 'checks']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from aimd.core.atomic import atomic_file, atomic_write_json, atomic_write_text
from aimd.core.hashing import sha256_file
from aimd.iq.checks.base import CheckResult, Deviation
from aimd.iq.report_template import IQ_TEMPLATE

REPORT_FORMAT = "aimd-iq-report"
SECTIONS = [
    ("resources", "Resources, plan and people (002 §6.1)"),
    ("function", "Functional confirmation (§4.3.1)"),
    ("security", "C.2 Installation security (§5.1, §6.2)"),
    ("reliability", "C.3 Installation reliability (§5.2, §6.3)"),
    ("performance", "C.4 Performance (§4.3.2, §5.3, §6.4)"),
    ("logs", "C.5 Logs and monitoring audit (§5.4, §6.5)"),
    ("versions", "C.6 Version management (§5.5, §6.6)"),
]


class BasicInfo(BaseModel):
    """App. C.1."""

    model_config = ConfigDict(extra="forbid")

    report_id: str
    object: str
    purpose: str
    started: str
    finished: str
    place: str
    people: list[dict[str, str]]
    conclusion: str
    conclusion_reasons: list[str]
    issuer: str = ""
    issuer_title: str = ""
    issue_date: str = ""


class EvidenceFile(BaseModel):
    """One attachment with its hash (App. C.7)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    size: int


class IQReport(BaseModel):
    """The installation qualification report."""

    model_config = ConfigDict(extra="forbid")

    format: str = REPORT_FORMAT
    version: str = "1"
    basic: BasicInfo
    target: dict[str, Any]
    profile: str
    scores: dict[str, Any]
    areas: list[dict[str, str]] = Field(default_factory=lambda: [{"key": k, "title": t} for k, t in SECTIONS])
    checks: list[CheckResult]
    deviations: list[Deviation]
    traceability: list[dict[str, Any]]
    evidence: list[EvidenceFile]
    seconds: float


def evidence_index(out: Path) -> list[EvidenceFile]:
    """Every file under ``out/evidence`` with SHA-256 and size."""
    folder = out / "evidence"
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return [
        EvidenceFile(path=p.relative_to(out).as_posix(), sha256=sha256_file(p), size=p.stat().st_size) for p in files
    ]


def traceability(checks: list[CheckResult]) -> list[dict[str, Any]]:
    """002 clause → checks and their verdicts."""
    rows: dict[str, list[CheckResult]] = {}
    for c in checks:
        rows.setdefault(c.clause, []).append(c)
    return [
        {"clause": clause, "checks": [c.key for c in cs], "verdicts": [c.verdict.value for c in cs]}
        for clause, cs in rows.items()
    ]


def render_html(report: IQReport) -> str:
    """The report as one HTML page (cell formatting shared with the conformity report)."""
    from aimd.reports.render import pretty, short

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(IQ_TEMPLATE).render(report=report, pretty=pretty, short=short)


def write_report(report: IQReport, out: Path, *, pdf: bool = True) -> dict[str, Path]:
    """Write iq-report.json, iq-report.schema.json, iq-report.html and (optionally) iq-report.pdf."""
    paths = {"json": out / "iq-report.json", "schema": out / "iq-report.schema.json", "html": out / "iq-report.html"}
    atomic_write_json(paths["json"], report.model_dump(mode="json"))
    atomic_write_json(paths["schema"], IQReport.model_json_schema())
    html = render_html(report)
    atomic_write_text(paths["html"], html)
    if pdf:
        import weasyprint

        paths["pdf"] = out / "iq-report.pdf"
        fetcher = weasyprint.URLFetcher(allowed_protocols=["file"])
        with atomic_file(paths["pdf"], suffix=".pdf") as tmp:
            weasyprint.HTML(string=html, base_url=str(out.resolve()) + "/", url_fetcher=fetcher).write_pdf(tmp)
    return paths


__all__ = [
    "REPORT_FORMAT",
    "SECTIONS",
    "BasicInfo",
    "EvidenceFile",
    "IQReport",
    "evidence_index",
    "render_html",
    "traceability",
    "write_report",
]
