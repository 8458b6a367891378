"""The link drill's judgement, specifications and metric window without servers (the servers: integration)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aimd.iq.checks.links import judge_link, window
from aimd.iq.linkdrill import database_link
from aimd.iq.specs import LinkDrill, LinkFault

METRICS = '# TYPE aimd_requests counter\naimd_requests_total{code="502"} %d\n# TYPE q gauge\nq %d\n'


def _row(**changes: object) -> dict:
    row = {
        "expect": "served",
        "link": "pacs",
        "results": [{"status": 200}],
        "alive": True,
        "recovered": True,
        "attempts": 3,
        "requests": 1,
        "alerts_missed": [],
        "false_alerts": [],
        "injected": True,
    }
    return {**row, **changes}


def test_counters_count_over_the_scenario_and_gauges_keep_their_value() -> None:
    samples = {(n, lab.get("code")): v for n, lab, v in window(METRICS % (3, 5), METRICS % (4, 2))}
    assert samples[("aimd_requests_total", "502")] == 1 and samples[("q", None)] == 2


def test_served_and_clear_error_judgements() -> None:
    assert judge_link(_row()) == []
    assert judge_link(_row(results=[{"status": 502, "error": "PACS unreachable"}]))[0].startswith("1 of 1 not served")
    clear = {"status": 503, "retry_after": "5", "error": "the database is unreachable"}
    assert judge_link(_row(expect="clear_error", link="database", results=[clear])) == []
    bare = judge_link(_row(expect="clear_error", link="database", results=[{"status": 500, "error": "Internal"}]))
    assert "not a clear error naming the database" in bare[0]
    no_retry = judge_link(_row(expect="clear_error", results=[{"status": 502, "error": "PACS down"}], attempts=1))
    assert no_retry == ["the service did not try the PACS again (1 connections for 1 requests)"]
    problems = judge_link(
        _row(alerts_missed=["PacsLinkErrors"], false_alerts=["Noise"], recovered=False, injected=False)
    )
    assert problems[0] == "the fault was not injected" and "alert PacsLinkErrors missed" in problems
    assert "false alert Noise" in problems and "the service did not serve again after the fault was lifted" in problems
    hung = judge_link(_row(expect="clear_error", results=[{"status": None, "hung": True}]))
    assert hung[0] == "1 requests hung past the client timeout"


def test_link_specifications_are_checked() -> None:
    with pytest.raises(ValidationError, match="injects nothing"):
        LinkFault(name="x", link="pacs", expect="served")
    with pytest.raises(ValidationError, match="cut_s needs cut"):
        LinkFault(name="x", link="pacs", latency_ms=5, cut_s=1, expect="served")
    fault = LinkFault(name="x", link="database", cut=True, expect="clear_error")
    assert fault.alert_expected and fault.fault_key == "database_link"
    with pytest.raises(ValidationError, match="study_uid and series_uid"):
        LinkDrill(model="m=x.ts", pacs_url="http://127.0.0.1:8042/dicom-web", faults=[fault])
    assert "SQLite" in str(database_link(None)) and "SQLite" in str(database_link("sqlite:///x.db"))
    assert database_link("postgresql+psycopg://u@127.0.0.1:5432/d") is None
