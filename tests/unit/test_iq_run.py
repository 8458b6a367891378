"""The IQ run end to end on an installed prefix: report files (App. C), evidence index, scoring, exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.iq.checks.base import CheckResult, Verdict
from aimd.iq.drill import make_probe_bundle
from aimd.iq.events import read_events
from aimd.iq.install import Layout, install
from aimd.iq.protocol import Scoring, dump_protocol
from aimd.iq.runner import run_iq
from aimd.iq.scoring import score
from aimd.iq.template import protocol_template

runner = CliRunner()


def _result(key: str, area: str, verdict: Verdict) -> CheckResult:
    return CheckResult(key=key, area=area, clause="002", title=key, verdict=verdict, expected="", observed="")


def test_scoring_pass_fail_and_incomplete() -> None:
    scoring = Scoring(weights={"versions": 50, "performance": 50}, pass_score=75, critical_areas=["versions"])
    ok = [
        _result("v", "versions", Verdict.PASS),
        _result("p1", "performance", Verdict.PASS),
        _result("p2", "performance", Verdict.PASS),
    ]
    assert score(ok, scoring)["conclusion"] == "pass"
    half = [*ok[:2], _result("p2", "performance", Verdict.FAIL)]
    s = score(half, scoring)
    assert s["areas"]["performance"]["score"] == 50.0 and s["total"] == 75.0 and s["conclusion"] == "pass"
    low = [*ok[:1], _result("p1", "performance", Verdict.FAIL), _result("p2", "performance", Verdict.FAIL)]
    assert score(low, scoring)["conclusion"] == "fail"
    critical = [_result("v", "versions", Verdict.FAIL), *ok[1:]]
    assert "critical checks failed: v" in score(critical, scoring)["reasons"][0]
    missing = [ok[0], _result("p1", "performance", Verdict.NOT_EVALUATED)]
    assert score(missing, scoring)["conclusion"] == "incomplete"


def test_run_writes_app_c_report_with_evidence_index_and_logs_itself(tmp_path: Path) -> None:
    prefix = tmp_path / "prefix"
    install(make_probe_bundle(tmp_path, "1.0.0"), prefix, operator="engineer", approved_by="qa")
    protocol = tmp_path / "iq.yaml"
    protocol.write_text(dump_protocol(protocol_template("1.0.0")))
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "iq",
            "run",
            "--protocol",
            str(protocol),
            "--prefix",
            str(prefix),
            "--out",
            str(out),
            "--only",
            "versions",
            "--only",
            "logs",
            "--only",
            "plan.process",
            "--json",
        ],
    )
    assert res.exit_code == 1, res.output  # function, security, performance not evaluated: incomplete
    summary = json.loads(res.output)
    assert summary["conclusion"] == "incomplete"
    report = json.loads((out / "iq-report.json").read_text())
    assert report["basic"]["object"].endswith("1.0.0") and report["basic"]["conclusion"] == "incomplete"
    assert {c["key"] for c in report["checks"]} >= {"versions.consistency", "versions.files", "logs.lifecycle"}
    assert all(c["verdict"] == "pass" for c in report["checks"] if c["area"] == "versions")
    for entry in report["evidence"]:
        assert sha256_file(out / entry["path"]) == entry["sha256"]
    assert any(t["clause"].startswith("002 §5.5.1") for t in report["traceability"])
    html = (out / "iq-report.html").read_text()
    for heading in (
        "C.1 Basic information",
        "C.2 Installation security",
        "C.6 Version management",
        "C.7 Attachments",
        "Deviations",
        "Traceability to 002",
    ):
        assert heading in html
    assert (out / "iq-report.pdf").read_bytes()[:4] == b"%PDF"
    run_events = [e for e in read_events(Layout(prefix).events) if e["kind"] == "iq-run"]
    assert [e["event"] for e in run_events][:2] == ["created", "approved"] and run_events[-1]["event"] == "completed"
    assert {e["step"] for e in run_events if e["event"] == "executed"} >= {"versions.consistency", "logs.lifecycle"}


def test_run_needs_something_to_qualify(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="nothing to qualify"):
        run_iq(protocol_template(), tmp_path / "out")
    with pytest.raises(InvalidInputError, match="prefix not found"):
        run_iq(protocol_template(), tmp_path / "out", prefix=tmp_path / "absent")
    res = runner.invoke(
        app, ["iq", "run", "--out", str(tmp_path / "o"), "--profile", "huge", "--prefix", str(tmp_path)]
    )
    assert isinstance(res.exception, InvalidInputError) and "unknown profile" in str(res.exception)


def test_platform_admin_credentials_are_checked(tmp_path: Path) -> None:
    missing = runner.invoke(
        app, ["iq", "run", "--platform", "http://127.0.0.1:9", "--platform-admin", str(tmp_path / "none.json")]
    )
    assert isinstance(missing.exception, InvalidInputError) and "none.json" in str(missing.exception)
    partial = tmp_path / "admin.json"
    partial.write_text(json.dumps({"username": "admin"}))
    with pytest.raises(InvalidInputError, match="username and password"):
        run_iq(protocol_template(), tmp_path / "out", platform="http://127.0.0.1:9", platform_admin=partial)
