"""Qualify aimd's own inference service: ``aimd serve`` started on 127.0.0.1 with TLS and a TorchScript model,
then the IQ run's function, security, baseline, concurrency, stress, metrics and alert checks against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_iq_service import _self_signed

from aimd.imaging.nifti_io import write_nifti
from aimd.iq.protocol import BaselineCase
from aimd.iq.runner import run_iq
from aimd.iq.template import protocol_template
from aimd.models.adapters import save_torchscript
from serving_support import CT_SPEC, SEG_SPEC, blob_net, two_blob_ct


def _aimd(*args: str, **kw: object) -> subprocess.Popen[str] | subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aimd.cli.main", *args], capture_output=True, text=True, check=True, timeout=300
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("serve")
    model = save_torchscript(blob_net(), root / "blob.ts", CT_SPEC, SEG_SPEC)
    vol, _, _ = two_blob_ct()
    write_nifti(vol, root / "ct.nii.gz")
    token = json.loads(
        _aimd("serve", "token", "create", "--scope", "infer", "--data", str(root / "data"), "--json").stdout
    )["token"]
    key, cert = _self_signed(root / "tls")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "serve",
            "--model",
            f"lesion={model}@1.0",
            "--data",
            str(root / "data"),
            "--port",
            str(port),
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--no-explain",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    url = f"https://127.0.0.1:{port}"
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if httpx.get(url + "/v2/health/ready", verify=False, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read() if proc.stderr else "aimd serve exited")
        time.sleep(0.5)
    else:
        proc.terminate()
        raise RuntimeError("aimd serve did not become ready")
    yield {"url": url, "token": token, "case": root / "ct.nii.gz"}
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.integration
def test_aimd_serve_passes_the_service_checks(served: dict[str, object], tmp_path: Path) -> None:
    p = protocol_template("1.0.0")
    p.baseline.cases = [BaselineCase(id=f"two-blob-{i}", file=str(served["case"]), reference="2") for i in range(3)]
    # limits generous enough for a 2-core machine shared with other jobs: the test is about the checks
    p.baseline.max_mean_seconds_per_case = 60.0
    p.baseline.max_mean_response_s = 60.0
    p.baseline.concurrency_users = 2
    p.baseline.concurrency_requests = 4
    p.stress.levels = [1, 2, 3]
    p.stress.requests_per_user = 2
    p.stress.p95_limit_s = 60.0
    p.stress.expected_max_concurrency = 2
    report = run_iq(
        p,
        tmp_path / "out",
        target=str(served["url"]),
        token=str(served["token"]),
        only=["function", "security", "performance", "logs"],
        pdf=False,
    )
    verdicts = {c.key: (c.verdict.value, c.reason) for c in report.checks}
    for key in (
        "function.tests",
        "security.unauthenticated",
        "security.weak_credentials",
        "security.tls",
        "monitoring.metrics",
        "monitoring.alerts",
    ):
        assert verdicts[key][0] == "pass", (key, verdicts[key])
    # response-time limits depend on how busy the shared machine is; the light service of test_iq_service
    # pins their pass and fail; here they must run and measure the real inference service
    for key in ("performance.concurrency", "performance.stress"):
        assert verdicts[key][0] in ("pass", "fail"), (key, verdicts[key])
    concurrency = next(c for c in report.checks if c.key == "performance.concurrency")
    assert concurrency.data["requests"] == 4 and concurrency.data["mean_s"] is not None
    routes = next(c for c in report.checks if c.key == "security.unauthenticated").data["routes"]
    assert len(routes) >= 8 and all(r["status"] in (401, 403) for r in routes)
    baseline = next(c for c in report.checks if c.key == "performance.baseline")
    assert baseline.data["accuracy"] == 1.0
    assert verdicts["hardening.not_root"][0] == "fail"  # the test runs the service as root: a finding, as it should
