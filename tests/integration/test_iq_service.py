"""IQ checks against a real HTTP service (FastAPI under uvicorn, started by the test on 127.0.0.1).

The service below is the test's device: secured (every non-public route needs a token, TLS, runs as
``nobody``, Prometheus metrics with a request counter) or, with ``--insecure``, with the defects the
checks must find (a route without auth, admin/admin accepted, plain HTTP, running as root).
Run as a script it serves: ``python test_iq_service.py --port 8443 [--insecure] [--tls DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, ProcessCollector, generate_latest

from aimd.iq.tls import self_signed

PASSWORD = "Qualified-Installer-2026!"
TOKEN = "iq-test-token-7f3a"


def build_app(insecure: bool, pacs_port: int | None = None) -> FastAPI:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    requests_total = Counter("aimd_requests", "HTTP requests by status code", ["code"], registry=registry)
    app = FastAPI()

    @app.middleware("http")
    async def count(request: Request, call_next):
        response = await call_next(request)
        requests_total.labels(code=str(response.status_code)).inc()
        return response

    def user(request: Request) -> str:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            raise HTTPException(401, "not authenticated")
        return "admin"

    @app.get("/v2/health/live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def ready() -> JSONResponse:
        if pacs_port is not None and not insecure:
            try:
                socket.create_connection(("127.0.0.1", pacs_port), timeout=1).close()
            except OSError:
                return JSONResponse(
                    {
                        "ready": False,
                        "error": f"PACS at 127.0.0.1:{pacs_port} unreachable",
                        "hint": "start the PACS; the service reconnects by itself",
                    },
                    status_code=503,
                )
        return JSONResponse({"ready": True})

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return generate_latest(registry).decode()

    @app.post("/auth/token")
    def login(username: str = Form(...), password: str = Form(...)) -> dict[str, str]:
        if (username, password) == ("admin", PASSWORD) or (insecure and (username, password) == ("admin", "admin")):
            return {"access_token": TOKEN, "token_type": "bearer"}
        raise HTTPException(401, "bad credentials")

    @app.post("/v1/predict")
    def predict(body: dict[str, float], _: str = Depends(user)) -> dict[str, str]:
        return {"label": "positive" if body.get("value", 0.0) > 0.5 else "negative"}

    @app.get("/ui", response_class=HTMLResponse)
    def ui() -> str:
        return (
            "<html><body style='font-family:sans-serif'><h1>Device console</h1><nav><a href='#'>Studies</a> · "
            "<a href='#'>Results</a> · <a href='#'>Audit</a></nav><table border=1><tr><td>study 1</td>"
            "<td>2 findings</td></tr></table></body></html>"
        )

    @app.get("/blank", response_class=HTMLResponse)
    def blank() -> str:
        return "<html><body></body></html>"

    @app.get("/v2/models")
    def models(_: str = Depends(user)) -> dict[str, list[str]]:
        return {"models": ["threshold"]}

    if insecure:

        @app.get("/v1/jobs")
        def jobs() -> list[str]:
            return ["job-1"]
    else:

        @app.get("/v1/jobs")
        def jobs_secured(_: str = Depends(user)) -> list[str]:
            return ["job-1"]

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key_path, cert_path = self_signed(folder)
    for p in (folder, key_path, cert_path):
        shutil.chown(p, "nobody")
    return key_path, cert_path


class Service:
    """The test device running in a subprocess."""

    def __init__(self, tmp: Path, *, insecure: bool) -> None:
        self.port = _free_port()
        self.pacs_port = _free_port()
        self.pidfile = tmp / "pacs.pid"
        self.start_pacs = [
            "sh",
            "-c",
            f"{sys.executable} -m http.server {self.pacs_port} --bind 127.0.0.1 "
            f">/dev/null 2>&1 & echo $! > {self.pidfile}",
        ]
        self.stop_pacs = ["sh", "-c", f"kill $(cat {self.pidfile})"]
        subprocess.run(self.start_pacs, check=True)
        script = tmp / "service.py"
        shutil.copy(__file__, script)
        script.chmod(0o644)
        tmp.chmod(0o755)
        cmd = [sys.executable, str(script), "--port", str(self.port), "--pacs-port", str(self.pacs_port)]
        scheme = "http"
        if insecure:
            cmd.append("--insecure")
        else:
            _self_signed(tmp / "tls")
            cmd += ["--tls", str(tmp / "tls"), "--user", "nobody"]
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp)
        import httpx

        for _ in range(300):
            try:
                httpx.get(self.url + "/v2/health/live", verify=False, timeout=1)
                return
            except httpx.HTTPError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.proc.stderr.read().decode()) from None
                time.sleep(0.1)
        raise RuntimeError("service did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        subprocess.run(self.stop_pacs, check=False, capture_output=True)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    if os.geteuid() != 0:
        pytest.skip("dropping the service to an unprivileged user needs root")
    service = Service(tmp_path_factory.mktemp("secure"), insecure=False)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def insecure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("insecure"), insecure=True)
    yield service
    service.stop()


def _protocol(**changes: object):
    from aimd.iq.protocol import BaselineCase, FunctionalTestCase
    from aimd.iq.template import protocol_template

    p = protocol_template("1.0.0")
    p.functional_tests = [c for c in p.functional_tests if c.system == "service"]  # the test device: a service
    p.functional_tests.append(
        FunctionalTestCase(
            id="F5", kind="main_flow", description="jobs listed with a token", path="/v1/jobs", acceptance="HTTP 200"
        )
    )
    p.functional_tests.append(
        FunctionalTestCase(
            id="U1", kind="ui", description="console page", path="/ui", acceptance="page shows navigation and a table"
        )
    )
    p.security.public_routes += ["/ui", "/blank"]  # static page shells; their data calls need the token
    p.baseline.endpoint = "/v1/predict"
    p.baseline.answer_field = "label"
    p.baseline.cases = [
        BaselineCase(id=f"c{i}", request={"value": v}, reference=ref)
        for i, (v, ref) in enumerate(
            [
                (0.9, "positive"),
                (0.1, "negative"),
                (0.7, "positive"),
                (0.2, "negative"),
                (0.95, "positive"),
                (0.4, "negative"),
            ]
        )
    ]
    p.baseline.min_accuracy = 0.8
    p.required_metrics = ["aimd_requests_total", "process_cpu_seconds_total"]
    p.baseline.concurrency_requests = 12
    p.stress.levels = [1, 2, 4]
    p.stress.requests_per_user = 3
    p.stress.expected_max_concurrency = 2
    for key, value in changes.items():
        obj = p
        *path, last = key.split(".")
        for part in path:
            obj = getattr(obj, part)
        setattr(obj, last, value)
    return p


SERVICE_ONLY = ["function", "security", "performance", "logs"]


@pytest.mark.integration
def test_secured_service_passes_function_security_performance_and_alerts(secure: Service, tmp_path: Path) -> None:
    from aimd.iq.runner import run_iq

    report = run_iq(_protocol(), tmp_path / "out", target=secure.url, token=TOKEN, only=SERVICE_ONLY, pdf=False)
    verdicts = {c.key: c.verdict.value for c in report.checks}
    assert verdicts["function.tests"] == "pass"
    assert verdicts["function.ui_render"] == "pass"
    assert verdicts["security.unauthenticated"] == "pass"
    assert verdicts["security.weak_credentials"] == "pass"
    assert verdicts["security.tls"] == "pass"
    assert verdicts["hardening.not_root"] == "pass"
    assert verdicts["performance.baseline"] == "pass"
    assert verdicts["performance.concurrency"] == "pass"
    assert verdicts["performance.stress"] == "pass"
    assert verdicts["monitoring.metrics"] == "pass"
    assert verdicts["monitoring.alerts"] == "pass"
    baseline = next(c for c in report.checks if c.key == "performance.baseline")
    assert baseline.data["accuracy"] == 1.0 and baseline.data["accuracy_ci95"][0] < 1.0
    stress = next(c for c in report.checks if c.key == "performance.stress")
    assert [row["users"] for row in stress.data["levels"]] == [1, 2]  # quick profile: all but the last level
    assert (tmp_path / "out" / "evidence" / "stress.png").stat().st_size > 1000
    rules = json.loads((tmp_path / "out" / "evidence" / "alerts.json").read_text())
    assert rules[0]["status"] == "fired on its fault"


@pytest.mark.integration
def test_service_runs_as_unprivileged_user_or_root(secure: Service, insecure: Service, tmp_path: Path) -> None:
    from aimd.iq.checks.base import IQContext
    from aimd.iq.checks.environment import NotRootCheck

    ok = NotRootCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, target=secure.url))
    bad = NotRootCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, target=insecure.url))
    assert ok.verdict.value == "pass" and "nobody" in ok.observed
    assert bad.verdict.value == "fail" and bad.deviation is not None


@pytest.mark.integration
def test_insecure_service_fails_with_deviations(insecure: Service, tmp_path: Path) -> None:
    from aimd.iq.runner import run_iq

    report = run_iq(_protocol(), tmp_path / "out", target=insecure.url, token=TOKEN, only=SERVICE_ONLY, pdf=False)
    checks = {c.key: c for c in report.checks}
    assert checks["security.unauthenticated"].verdict.value == "fail"
    assert "GET /v1/jobs → 200" in checks["security.unauthenticated"].reason
    assert checks["security.weak_credentials"].verdict.value == "fail"
    assert checks["security.tls"].verdict.value == "fail"
    assert report.basic.conclusion == "fail"
    assert {d.check for d in report.deviations} >= {"security.unauthenticated", "security.tls"}


@pytest.mark.integration
def test_failing_function_baseline_stress_and_alert_rules(secure: Service, tmp_path: Path) -> None:
    from aimd.iq.protocol import AlertRule, BaselineCase, FunctionalTestCase
    from aimd.iq.runner import run_iq

    p = _protocol(
        **{
            "stress.p95_limit_s": 1e-6,
            "baseline.min_accuracy": 0.99,
            "baseline.max_mean_response_s": 1e-6,
            "required_metrics": ["process_cpu_seconds_total", "aimd_inference_seconds"],
        }
    )
    p.functional_tests.append(
        FunctionalTestCase(id="F9", kind="ui", description="viewer page", path="/viewer", acceptance="HTTP 200")
    )
    p.functional_tests.append(
        FunctionalTestCase(id="U2", kind="ui", description="blank page", path="/blank", acceptance="page shows content")
    )
    p.baseline.cases.append(BaselineCase(id="wrong", request={"value": 0.9}, reference="negative"))
    p.alert_rules = [
        AlertRule(
            name="TooHigh",
            metric="aimd_requests_total",
            labels={"code": "401"},
            op=">",
            threshold=1e9,
            fault="illegal_access",
        ),
        AlertRule(name="Noisy", metric="aimd_requests_total", labels={"code": "200"}, op=">", threshold=0),
    ]
    report = run_iq(p, tmp_path / "out", target=secure.url, token=TOKEN, only=SERVICE_ONLY, pdf=False)
    checks = {c.key: c for c in report.checks}
    assert checks["function.tests"].verdict.value == "fail" and "F9" in checks["function.tests"].reason
    assert checks["function.ui_render"].verdict.value == "fail" and "U2" in checks["function.ui_render"].reason
    baseline = checks["performance.baseline"]
    assert baseline.verdict.value == "fail" and "accuracy" in baseline.reason
    assert checks["performance.stress"].verdict.value == "fail"
    assert checks["performance.stress"].data["max_concurrency"] == 0
    concurrency = checks["performance.concurrency"]
    assert concurrency.verdict.value == "fail" and "mean" in concurrency.reason
    assert (
        checks["monitoring.metrics"].verdict.value == "fail"
        and "aimd_inference_seconds" in checks["monitoring.metrics"].observed
    )
    alerts = checks["monitoring.alerts"]
    assert alerts.verdict.value == "fail" and alerts.data["missed"] == 1 and alerts.data["false"] == 1


@pytest.mark.integration
def test_absent_target_is_not_evaluated(tmp_path: Path) -> None:
    from aimd.iq.runner import run_iq

    report = run_iq(
        _protocol(), tmp_path / "out", target=f"http://127.0.0.1:{_free_port()}", only=SERVICE_ONLY, pdf=False
    )
    assert {c.verdict.value for c in report.checks if c.area in ("function", "security", "performance")} == {
        "not_evaluated"
    }
    assert report.basic.conclusion != "pass"


@pytest.mark.integration
def test_no_baseline_cases_means_no_load_verdict(secure: Service, tmp_path: Path) -> None:
    from aimd.iq.runner import run_iq

    report = run_iq(
        _protocol(**{"baseline.cases": []}),
        tmp_path / "out",
        target=secure.url,
        token=TOKEN,
        only=["performance"],
        pdf=False,
    )
    assert {c.verdict.value for c in report.checks} == {"not_evaluated"}


@pytest.mark.integration
def test_dependency_outage_is_named_and_recovered(secure: Service, insecure: Service, tmp_path: Path) -> None:
    from aimd.iq.checks.base import IQContext
    from aimd.iq.checks.service import DependencyOutageCheck
    from aimd.iq.protocol import DependencySpec

    results = {}
    for name, service in (("secure", secure), ("insecure", insecure)):
        p = _protocol()
        p.dependencies = [
            DependencySpec(name="PACS", stop=service.stop_pacs, start=service.start_pacs, recover_within_s=30)
        ]
        ctx = IQContext(protocol=p, out=tmp_path / name, target=service.url)
        results[name] = DependencyOutageCheck().execute(ctx)
    ok, bad = results["secure"], results["insecure"]
    assert ok.verdict.value == "pass", ok.observed
    row = ok.data["dependencies"][0]
    assert row["ready_during_outage"] == 503 and row["service_alive"] and row["recovered_after_s"] is not None
    assert bad.verdict.value == "fail" and bad.data["dependencies"][0]["named_in_answer"] is False


@pytest.mark.integration
def test_network_faults_are_measured_through_the_proxy(secure: Service, tmp_path: Path) -> None:
    from aimd.iq.checks.base import IQContext
    from aimd.iq.checks.network import NetworkFaultCheck
    from aimd.iq.specs import NetworkFault

    p = _protocol()
    p.network_faults = [
        NetworkFault(name="latency", latency_ms=150, jitter_ms=20, requests=4, expect="served", max_mean_response_s=5),
        NetworkFault(name="reset", reset_rate=0.5, requests=6, expect="clear_error", seed=3),
        NetworkFault(name="blackhole", drop_rate=0.5, requests=4, timeout_s=1.0, expect="clear_error", seed=4),
    ]
    ok = NetworkFaultCheck().execute(IQContext(protocol=p, out=tmp_path / "ok", target=secure.url, token=TOKEN))
    assert ok.verdict.value == "pass", ok.reason
    rows = {r["scenario"]: r for r in ok.data["scenarios"]}
    assert rows["latency"]["ok"] == 4 and rows["latency"]["mean_s"] >= 0.26  # ≥ 2 × (150 − 20) ms
    assert rows["reset"]["proxy"]["reset"] >= 1 and rows["reset"]["errors"] == rows["reset"]["proxy"]["reset"]
    blackhole = rows["blackhole"]
    assert blackhole["errors"] == blackhole["proxy"]["dropped"] >= 1 and blackhole["hung"] == 0
    assert set(blackhole["error_kinds"]) <= {"ConnectTimeout", "ReadTimeout"}  # TLS handshake or answer never came
    assert all(r["recovered"] and r["wrong"] == 0 for r in rows.values())
    assert ok.data["netem"]["available"] in (True, False)

    # the site accepts at most 0.2 s per answer, but the link adds 300 ms each way: measured, and failed
    p.network_faults = [
        NetworkFault(name="slow link", latency_ms=300, requests=3, expect="served", max_mean_response_s=0.2)
    ]
    bad = NetworkFaultCheck().execute(IQContext(protocol=p, out=tmp_path / "bad", target=secure.url, token=TOKEN))
    assert bad.verdict.value == "fail" and "mean" in bad.reason and bad.deviation is not None
    assert bad.data["scenarios"][0]["mean_s"] >= 0.6


@pytest.mark.integration
def test_network_faults_not_evaluated_without_scenarios(secure: Service, tmp_path: Path) -> None:
    from aimd.iq.checks.base import IQContext
    from aimd.iq.checks.network import NetworkFaultCheck

    res = NetworkFaultCheck().execute(
        IQContext(protocol=_protocol(network_faults=[]), out=tmp_path, target=secure.url, token=TOKEN)
    )
    assert res.verdict.value == "not_evaluated"


def _serve() -> None:  # pragma: no cover - runs in the service subprocess
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--tls", default=None)
    parser.add_argument("--pacs-port", type=int, default=None)
    parser.add_argument("--user", default=None, help="drop privileges to this user after start-up imports")
    args = parser.parse_args()
    tls = {"ssl_keyfile": f"{args.tls}/key.pem", "ssl_certfile": f"{args.tls}/cert.pem"} if args.tls else {}
    app = build_app(args.insecure, args.pacs_port)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", loop="asyncio", http="h11", lifespan="off", **tls
    )
    config.load()  # imports every module the server needs while they are still readable
    import encodings.idna  # noqa: F401 - host names are encoded with it when connecting to the PACS

    if args.user:
        import pwd

        entry = pwd.getpwnam(args.user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    uvicorn.Server(config).run()


if __name__ == "__main__":
    _serve()
