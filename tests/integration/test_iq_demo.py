"""aimd qualifies itself: its own wheel bundled and signed, installed offline into a prefix, the installed
``aimd serve`` started over TLS, and the quick IQ run against prefix and service (the demo's IQ stage)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimd import __version__
from aimd.cli.demo import pacs_drill
from aimd.iq.demo import run_iq_demo


@pytest.fixture
def site() -> Iterator[Path]:
    """A folder the service account can enter, as a site's /opt is (pytest's own are root's, 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="aimd-iq-demo-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.integration
def test_aimd_bundle_installs_serves_and_is_qualified(site: Path) -> None:
    tmp_path = site
    # the shipped reference device and its validated baseline; a real Orthanc for the link drill
    result = run_iq_demo(tmp_path / "iq", links=pacs_drill)
    report = json.loads((tmp_path / "iq" / "report" / "iq-report.json").read_text())
    verdicts = {c["key"]: c["verdict"] for c in report["checks"]}
    assert report["target"]["version"] == __version__
    for key in (
        "versions.consistency",
        "versions.files",
        "environment.lock",
        "function.tests",
        "security.unauthenticated",
        "security.tls",
        "hardening.debug_off",
        "hardening.file_modes",
        "reliability.rollback",
        "logs.lifecycle",
        "monitoring.metrics",
    ):
        assert verdicts[key] == "pass", (key, next(c for c in report["checks"] if c["key"] == key)["reason"])
    # the baseline cases carry reference results of the shipped device: the load checks are evaluated
    baseline = json.loads((tmp_path / "iq" / "baseline" / "baseline.json").read_text())
    assert len(baseline["cases"]) == 4 and baseline["device"] == "device-lesions"
    assert all(verdicts[k] != "not_evaluated" for k in ("performance.baseline", "performance.concurrency"))
    assert verdicts["performance.stress"] != "not_evaluated" and verdicts["reliability.network"] != "not_evaluated"
    cases = next(c for c in report["checks"] if c["key"] == "performance.baseline")["data"]["cases"]
    assert [r["answer"] for r in cases] == [c["reference"] for c in baseline["cases"]]  # installed = validated
    # the installed annotation platform is qualified too: MFA, least privilege, audit chain, import hash
    for key in ("security.mfa", "security.least_privilege", "security.import_integrity", "logs.command_audit"):
        assert verdicts[key] == "pass", (key, next(c for c in report["checks"] if c["key"] == key)["reason"])
    # the installed service's own PACS link, drilled against a real Orthanc (SQLite: no database link)
    links = next(c for c in report["checks"] if c["key"] == "reliability.links")
    assert links["verdict"] == "pass", links["reason"]
    rows = {r["scenario"]: r for r in links["data"]["scenarios"]}
    assert rows["pacs outage"]["alerts_fired"] == ["PacsLinkErrors"] and rows["pacs flaky"]["proxy"]["reset"] > 0
    assert all(r["verdict"] == "not_evaluated" for r in rows.values() if r["link"] == "database")
    # the installed platform's login screen drawn by Chromium; the installed service's PACS stopped and restarted
    ui = next(c for c in report["checks"] if c["key"] == "function.ui_render")
    assert ui["verdict"] == "pass" and ui["data"]["pages"][0]["text_shown"], ui["reason"]
    # and used: sign-in with TOTP over TLS, each menu screen, the language switch, log-out ending the session
    nav = next(c for c in report["checks"] if c["key"] == "function.ui_navigation")
    assert nav["verdict"] == "pass" and nav["data"]["steps"][-1]["token_after_logout"] == 401, nav["reason"]
    outage = next(c for c in report["checks"] if c["key"] == "reliability.dependency")
    assert outage["verdict"] == "pass", outage["observed"]
    assert outage["data"]["dependencies"][0]["ready_during_outage"] == 503
    assert verdicts["plan.people"] == "fail"  # the site has not recorded its people yet: a deviation
    # as root the services run as the system account aimd, unless it cannot read this checkout's Python and
    # packages (a checkout in a folder private to root): then they run as root, the demo says why, and the
    # critical check hardening.not_root fails the installation, as it must
    off_root = os.geteuid() != 0 or result["service_account"].startswith("services run as aimd")
    not_root = next(c for c in report["checks"] if c["key"] == "hardening.not_root")
    runs_as = links["data"]["service_runs_as"]
    if off_root:
        assert not_root["verdict"] == "pass", not_root["observed"]
        # the link drill's own aimd serve runs as the installed services do
        expected = "aimd (uid " if os.geteuid() == 0 else "the caller"
        assert runs_as.startswith(expected), runs_as
        assert result["deviations"] == ["plan.people"] and result["conclusion"] == "pass"
    else:
        assert result["service_account"].startswith("services run as root: account aimd"), result["service_account"]
        assert not_root["verdict"] == "fail" and "uid 0" in not_root["observed"], not_root["observed"]
        assert sorted(result["deviations"]) == ["hardening.not_root", "plan.people"] and result["conclusion"] == "fail"
        assert runs_as == "the caller", runs_as  # the install has no service account then
    assert all(d["identical"] for d in result["rollback_drills"])
    assert Path(result["report_pdf"]).read_bytes()[:4] == b"%PDF"
