"""The conformity report reads as a test lab's report: a title block, a verdict table naming who set
the limits, then per characteristic sentences generated from the evidence and tables of numbers —
never a JSON dump. report.json is unchanged."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_evaluation_support import context, disks

from aimd.core.config import get_settings
from aimd.evaluation import CLAUSES, Claims, EfficiencyClaim, GeneralizationClaim, run_characteristics
from aimd.evaluation.evidence import CharacteristicResult, Evidence, Verdict
from aimd.reports import Report, build_report, render_html, write_report
from aimd.reports.narrative import flatten, human, section_sentences, threshold_owner

JSON_DUMP = re.compile(r"[\[{]\s*(&#34;|&#39;|\"|')[^<]*?(&#34;|&#39;|\"|')\s*:")


class _Sections(HTMLParser):
    """Tables counted per ``<h2 id=...>`` section."""

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None
        self.tables: dict[str, int] = {}
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h2":
            self.current = a.get("id")
            if self.current:
                self.tables[self.current] = 0
        elif tag == "table" and self.current:
            self.tables[self.current] += 1
        elif tag == "pre":
            self.pre += 1


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, dict[str, str | None], Path]:
    out = tmp_path_factory.mktemp("report")
    ctx = context(out, data=disks({f"c{i}": "AB"[i % 2] for i in range(8)}, fg={"A": 0.8, "B": 0.8}))
    claims = Claims(
        origin="Example Devices Ltd. (provider)",
        efficiency=EfficiencyClaim(runs=3, int8=False, max_parameters=1),
        generalization=GeneralizationClaim(min_metric=0.9),
    )
    results = run_characteristics(ctx, claims, only=["efficiency", "generalization"])
    report = build_report(ctx, claims, results, started=datetime.now(UTC), claims_source="test", duration_s=1.5)
    return report, write_report(report, out, pdf=True), out


def test_html_has_no_json_dump_and_a_table_in_every_section(written: tuple[Report, dict, Path]) -> None:
    report, paths, _ = written
    html = Path(str(paths["report_html"])).read_text(encoding="utf-8")
    parser = _Sections()
    parser.feed(html)
    assert parser.pre == 0
    assert JSON_DUMP.search(html) is None, JSON_DUMP.search(html)
    assert set(parser.tables) == {c.key for c in CLAUSES}
    assert all(n >= 1 for n in parser.tables.values()), parser.tables
    # judged characteristics carry the claim, the comparison, their evidence tables and the measurements
    assert parser.tables["efficiency"] >= 5 and parser.tables["generalization"] >= 5
    efficiency = html[html.index('id="efficiency"') : html.index('id="repeatability"')]
    assert "Claim against measurement" in efficiency and "<h3>Measurements</h3>" in efficiency


def test_title_block_names_model_hashes_lab_and_date(written: tuple[Report, dict, Path]) -> None:
    report, _, _ = written
    html = render_html(report, lab="Example Test Lab, Room 3")
    title = html[: html.index("<h2>Verdicts</h2>")]
    assert "Example Test Lab, Room 3" in title
    assert report.header.created in title and report.header.data["digest_sha256"] in title
    assert report.header.claims["sha256"] in title and "Model version" in title


def test_lab_comes_from_the_setting(written: tuple[Report, dict, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    report, _, _ = written
    monkeypatch.setenv("AIMD_LAB", "Lab from the environment")
    get_settings.cache_clear()
    try:
        assert "Lab from the environment" in render_html(report)
    finally:
        monkeypatch.delenv("AIMD_LAB")
        get_settings.cache_clear()
    assert "not stated (set AIMD_LAB)" in render_html(report)


def test_verdict_table_says_who_set_the_limits(written: tuple[Report, dict, Path]) -> None:
    report, paths, _ = written
    html = Path(str(paths["report_html"])).read_text(encoding="utf-8")
    table = html[html.index("<h2>Verdicts</h2>") : html.index("</table>", html.index("<h2>Verdicts</h2>"))]
    assert "limits set by" in table and "Example Devices Ltd. (provider)" in table and "no claim" in table


def test_sentences_are_generated_from_the_measured_evidence(written: tuple[Report, dict, Path]) -> None:
    report, _, _ = written
    efficiency = next(s for s in report.sections if s.key == "efficiency")
    text = " ".join(section_sentences(efficiency, "the provider"))
    parameters = efficiency.evidence.measurements["parameters"]
    assert f"Parameters: measured {parameters:,} against the claimed ≤ 1 — not met." in text
    assert "Verdict: nonconform." in text
    generalization = next(s for s in report.sections if s.key == "generalization")
    met = " ".join(section_sentences(generalization, "the provider"))
    assert "— met" in met and "not met" not in met and "Verdict: conform." in met


def test_no_claim_and_error_sentences() -> None:
    measured = CharacteristicResult(
        key="scalability",
        clause="000 §6.3.2",
        title="Architecture scalability",
        verdict=Verdict.NOT_EVALUATED,
        reason="no claim",
        evidence=Evidence(measurements={"latency_ms": 3.0}),
    )
    text = " ".join(section_sentences(measured, "the provider"))
    assert "No claim was declared" in text and "measured" in text
    assert threshold_owner(measured, "the provider") == "no claim"
    broken = measured.model_copy(update={"error": "RuntimeError: out of memory"})
    assert "stopped with an error: RuntimeError: out of memory" in " ".join(section_sentences(broken, "x"))


def test_values_are_written_with_units_and_never_as_json() -> None:
    assert human(0.000012345, "max_abs_deviation") == "1.234e-05"
    assert human(7.703, "memory_mb") == "7.703 MB" and human(12, "seconds") == "12 s"
    assert human([[-600.0, 1500.0], [40.0, 400.0]]) == "(-600, 1500), (40, 400)"
    assert human({"full": 0.8, "lora": 0.45}) == "full: 0.8; lora: 0.45"
    assert human(list(range(20))).endswith("… (20 values)")
    rows = flatten({"configs": [{"threads": 1, "latency_ms": 4.4}, {"threads": 2, "latency_ms": 2.5}]})
    assert rows == [
        ("configs 1 › threads", "1"),
        ("configs 1 › latency ms", "4.4 ms"),
        ("configs 2 › threads", "2"),
        ("configs 2 › latency ms", "2.5 ms"),
    ]
    assert not any("{" in v for _, v in flatten({"a": {"b": {"c": [1, 2]}}}))


def test_json_and_pdf_unchanged_in_form(written: tuple[Report, dict, Path]) -> None:
    report, paths, _ = written
    data = json.loads(Path(str(paths["report_json"])).read_text(encoding="utf-8"))
    assert Report.model_validate(data) == report
    assert set(data) == {"format", "version", "header", "summary", "sections", "figures"}
    pdf = Path(str(paths["report_pdf"])).read_bytes()
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-1024:]
