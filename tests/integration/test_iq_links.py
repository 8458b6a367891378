"""Faults on aimd serve's own links: a real Orthanc PACS and a real PostgreSQL reached through the fault proxy.

The IQ check starts ``aimd serve`` (TorchScript blob model) with ``--pacs`` and ``--db`` pointing at the
proxies and runs each scenario: a flaky PACS link ridden out by the retries, a brief PACS outage a job
survives, a long PACS outage answered with a clear error naming the PACS, a slow and a cut database link.
A service configured without retries and an alert rule that never fires fail the same scenarios.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd.iq.checks.base import IQContext
from aimd.iq.checks.links import LinkFaultCheck
from aimd.iq.protocol import AlertRule
from aimd.iq.specs import LinkDrill, LinkFault
from aimd.iq.template import protocol_template
from serving_support import (
    export_models,
    orthanc_missing,
    orthanc_server,
    two_blob_ct,
    upload_to_orthanc,
    write_ct_series,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(orthanc_missing() is not None, reason=str(orthanc_missing()))]

SERVE = ["--no-explain", "--pacs-timeout", "3", "--pacs-backoff", "0.3", "--threads", "1"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("iq-links")
    model = export_models(root / "models")["torchscript"]
    files = write_ct_series(two_blob_ct()[0], root / "series")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    with orthanc_server(root / "orthanc") as pacs:
        upload_to_orthanc(pacs, files)
        yield {"pacs": pacs, "model": f"blob={model}@1.0", "study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID}


def _protocol(world, faults: list[LinkFault], database_url: str | None, serve_args: list[str], rules: list[AlertRule]):
    p = protocol_template("1.0.0")
    p.links = LinkDrill(
        model=world["model"],
        pacs_url=str(world["pacs"]["dicomweb"]),
        study_uid=str(world["study"]),
        series_uid=str(world["series"]),
        answer_field="findings.#",
        database_url=database_url,
        serve_args=serve_args,
        recover_within_s=30,
        faults=faults,
    )
    p.alert_rules = rules
    return p


def _rule(name: str, code: str, fault: str) -> AlertRule:
    return AlertRule(name=name, metric="aimd_requests_total", labels={"code": code}, op=">", threshold=0, fault=fault)


def _rows(res) -> dict[str, dict]:
    return {r["scenario"]: r for r in res.data["scenarios"]}


def test_pacs_and_postgres_link_faults_are_ridden_out_or_clear(world, postgresql_url, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIMD_PACS_USER", world["pacs"]["auth"][0])
    monkeypatch.setenv("AIMD_PACS_PASSWORD", world["pacs"]["auth"][1])
    faults = [
        LinkFault(name="pacs flaky", link="pacs", reset_rate=0.5, requests=2, expect="served", seed=1),
        LinkFault(
            name="pacs brief outage", link="pacs", cut=True, cut_s=0.8, mode="async", requests=1, expect="served"
        ),
        LinkFault(name="pacs outage", link="pacs", cut=True, requests=1, expect="clear_error"),
        LinkFault(name="pacs packet loss", link="pacs", loss_pct=5, expect="served"),
        LinkFault(name="database latency", link="database", latency_ms=30, jitter_ms=10, requests=1, expect="served"),
        LinkFault(name="database outage", link="database", cut=True, requests=1, expect="clear_error"),
    ]
    rules = [_rule("PacsLinkErrors", "502", "pacs_link"), _rule("DatabaseLinkErrors", "503", "database_link")]
    p = _protocol(world, faults, postgresql_url, SERVE, rules)
    res = LinkFaultCheck().execute(IQContext(protocol=p, out=tmp_path))
    rows = _rows(res)
    assert res.verdict.value == "pass", (res.reason, res.observed)
    assert rows["pacs flaky"]["proxy"]["reset"] >= 1 and rows["pacs flaky"]["injected"]  # resets were retried
    assert rows["pacs brief outage"]["results"][0]["job"] == "done"
    outage = rows["pacs outage"]["results"][0]
    assert (
        outage["status"] == 502 and "tried 4 times" in outage["error"] and rows["pacs outage"]["attempts"] >= 3
    )  # the first try met the severed pooled connection
    assert rows["pacs outage"]["alerts_fired"] == ["PacsLinkErrors"]
    db = rows["database outage"]["results"][0]
    assert (
        db["status"] == 503 and db["retry_after"] and rows["database outage"]["alerts_fired"] == ["DatabaseLinkErrors"]
    )
    probe = res.data["netem"]
    assert rows["pacs packet loss"]["verdict"] == ("pass" if probe["available"] else "not_evaluated")
    if not probe["available"]:
        assert probe["reason"] in rows["pacs packet loss"]["why"]
    assert res.data["alerts"]["missed"] == 0 and res.data["alerts"]["false"] == 0


def test_no_retries_and_a_silent_alert_rule_fail(world, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AIMD_PACS_USER", world["pacs"]["auth"][0])
    monkeypatch.setenv("AIMD_PACS_PASSWORD", world["pacs"]["auth"][1])
    faults = [
        LinkFault(name="pacs flaky", link="pacs", reset_rate=0.5, requests=2, expect="served", seed=1),
        LinkFault(name="pacs outage", link="pacs", cut=True, requests=1, expect="clear_error"),
        LinkFault(name="database outage", link="database", cut=True, requests=1, expect="clear_error"),
    ]
    rules = [_rule("PacsGatewayTimeouts", "504", "pacs_link")]  # never fires: the service answers 502
    p = _protocol(world, faults, None, [*SERVE, "--pacs-retries", "0"], rules)
    res = LinkFaultCheck().execute(IQContext(protocol=p, out=tmp_path))
    rows = _rows(res)
    assert res.verdict.value == "fail" and res.deviation is not None
    assert any("not served" in x for x in rows["pacs flaky"]["problems"])
    assert any("did not try the PACS again" in x for x in rows["pacs outage"]["problems"])
    assert rows["pacs outage"]["alerts_missed"] == ["PacsGatewayTimeouts"] and res.data["alerts"]["missed"] == 1
    assert rows["database outage"]["verdict"] == "not_evaluated" and "SQLite" in rows["database outage"]["why"]
