"""Conformity report: JSON against its exported schema, HTML sections and figures, PDF."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import matplotlib.image as mpimg
import torch
from test_evaluation_support import context, disks

from aimd.evaluation import (
    CLAUSES,
    Claims,
    EfficiencyClaim,
    GeneralizationClaim,
    run_characteristics,
)
from aimd.reports import Report, build_report, write_report


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img" and a.get("src"):
            self.images.append(str(a["src"]))


def _report(tmp_path: Path) -> tuple[Report, dict[str, str | None]]:
    ctx = context(tmp_path, data=disks({f"c{i}": "AB"[i % 2] for i in range(8)}, fg={"A": 0.8, "B": 0.8}))
    claims = Claims(
        efficiency=EfficiencyClaim(runs=3, int8=False, max_parameters=1),
        generalization=GeneralizationClaim(min_metric=0.9),
    )
    results = run_characteristics(ctx, claims, only=["efficiency", "generalization"])
    report = build_report(ctx, claims, results, started=datetime.now(UTC), claims_source="test", duration_s=1.5)
    return report, write_report(report, tmp_path, pdf=True)


def test_report_files_schema_html_and_pdf(tmp_path: Path) -> None:
    report, paths = _report(tmp_path)
    data = json.loads(Path(str(paths["report_json"])).read_text(encoding="utf-8"))
    schema = json.loads(Path(str(paths["report_schema"])).read_text(encoding="utf-8"))
    jsonschema.validate(data, schema)
    assert Report.model_validate(data) == report
    verdicts = {s["key"]: s["verdict"] for s in data["sections"]}
    assert verdicts["efficiency"] == "nonconform" and verdicts["generalization"] == "conform"
    assert len(data["sections"]) == len(CLAUSES)
    assert all(s["reason"] for s in data["sections"])
    lines = "\n".join(f"{k}: {v}" for k, v in sorted(data["header"]["data"]["files"].items()))
    assert data["header"]["data"]["digest_sha256"] == hashlib.sha256(lines.encode()).hexdigest()
    assert data["header"]["versions"]["torch"] == torch.__version__
    html = Path(str(paths["report_html"])).read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(html)
    assert set(parser.ids) == {c.key for c in CLAUSES}
    assert "not selected (--only)" in html and "nonconform" in html
    assert html.index("Claims:") < html.index("<h2>Verdicts</h2>")  # who set the bar, on the first page
    assert len(parser.images) == len(report.figures) >= 3
    for src in parser.images:
        img = mpimg.imread(tmp_path / src)
        assert img.ndim == 3 and img.shape[0] > 100
    pdf = Path(str(paths["report_pdf"])).read_bytes()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-1024:] and len(pdf) > 10_000
