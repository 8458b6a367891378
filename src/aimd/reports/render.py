"""Renderers of one :class:`~aimd.reports.model.Report`: JSON (+ its schema), HTML (Jinja2), PDF (WeasyPrint).

Every file is written atomically. The PDF is rendered from the same HTML with WeasyPrint, which
may only read local files (no network).

Example
-------
>>> short(0.123456789), short([1, 2])
('0.1235', '[1, 2]')
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from aimd.core.atomic import atomic_file, atomic_write_json, atomic_write_text
from aimd.evaluation.evidence import Outcome
from aimd.reports.model import Report, report_schema
from aimd.reports.narrative import claim_text, flatten, human, section_sentences, threshold_owner, title_block
from aimd.reports.templates import REPORT_TEMPLATE

VERDICT_TEXT = {
    "conform": "conform",
    "nonconform": "nonconform",
    "inconclusive": "inconclusive",
    "not_evaluated": "not evaluated",
}


def short(value: Any, limit: int = 160) -> str:
    """A compact cell text for ``value``."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty(value: Any) -> str:
    """Indented JSON for a ``<pre>`` block."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def render_html(report: Report, lab: str | None = None) -> str:
    """The report as one HTML page (figures referenced relative to the report folder).

    It reads as a test lab's report: a title block (model, version, hashes, ``lab``, date), the
    verdict table, then per characteristic sentences and tables generated from the evidence
    (:mod:`aimd.reports.narrative`); no JSON is printed. ``lab`` defaults to the ``AIMD_LAB`` setting.
    """
    if lab is None:
        from aimd.core.config import get_settings

        lab = get_settings().lab
    origin = str(report.header.claims.get("origin") or "the claims")
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(REPORT_TEMPLATE)
    return template.render(
        report=report,
        verdict_text=VERDICT_TEXT,
        title=title_block(report, lab),
        sentences=lambda s: section_sentences(s, origin),
        owner=lambda s: threshold_owner(s, origin),
        flatten=flatten,
        human=human,
        claim_text=claim_text,
        outcomes=list(Outcome),
    )


def write_json(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.schema.json``."""
    path = out_dir / "report.json"
    atomic_write_json(path, report.model_dump(mode="json"))
    schema = out_dir / "report.schema.json"
    atomic_write_json(schema, report_schema())
    return path, schema


def write_html(report: Report, out_dir: Path) -> Path:
    """Write ``report.html``."""
    path = out_dir / "report.html"
    atomic_write_text(path, render_html(report))
    return path


def write_pdf(report: Report, out_dir: Path) -> Path:
    """Write ``report.pdf`` from the HTML with WeasyPrint (local files only)."""
    import weasyprint

    html = render_html(report)
    path = out_dir / "report.pdf"
    fetcher = weasyprint.URLFetcher(allowed_protocols=["file"])
    with atomic_file(path, suffix=".pdf") as tmp:
        weasyprint.HTML(string=html, base_url=str(out_dir.resolve()) + "/", url_fetcher=fetcher).write_pdf(tmp)
    return path


__all__ = ["VERDICT_TEXT", "pretty", "render_html", "short", "write_html", "write_json", "write_pdf"]
