"""aimd qualifies itself: its own wheel bundled and signed, installed offline into a prefix, the installed
``aimd serve`` started over TLS, and the quick IQ run against prefix and service (the demo's IQ stage)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd import __version__
from aimd.iq.demo import run_iq_demo
from aimd.models.adapters import save_torchscript
from serving_support import CT_SPEC, SEG_SPEC, blob_net


@pytest.mark.integration
def test_aimd_bundle_installs_serves_and_is_qualified(tmp_path: Path) -> None:
    model = save_torchscript(blob_net(), tmp_path / "lesion.ts", CT_SPEC, SEG_SPEC)
    result = run_iq_demo(tmp_path / "iq", model=model)
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
        "reliability.rollback",
        "logs.lifecycle",
        "monitoring.metrics",
    ):
        assert verdicts[key] == "pass", (key, next(c for c in report["checks"] if c["key"] == key)["reason"])
    assert verdicts["plan.people"] == "fail"  # the site has not recorded its people yet: a deviation
    assert result["conclusion"] == "fail" and "plan.people" in result["deviations"]
    assert all(d["identical"] for d in result["rollback_drills"])
    assert Path(result["report_pdf"]).read_bytes()[:4] == b"%PDF"
