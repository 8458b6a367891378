"""Checks against a running target: function (002 §4.3.1), security (§5.1, §6.2), baseline and stress (§4.3.2, §6.4.2).

Example
-------
>>> fill_path("/jobs/{job_id}/result")
'/jobs/1/result'
>>> accuracy_ci(9, 10)[0]
0.9
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
from scipy.stats import binomtest

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.environment import listening_process
from aimd.iq.load import load_test

DENIED = (401, 403)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def fill_path(path: str) -> str:
    """An OpenAPI path with every ``{parameter}`` replaced by ``1``."""
    return re.sub(r"\{[^}]+\}", "1", path)


def accuracy_ci(correct: int, n: int) -> tuple[float, float, float]:
    """Accuracy with its 95 % Wilson interval."""
    ci = binomtest(correct, n).proportion_ci(0.95, method="wilson")
    return correct / n, float(ci.low), float(ci.high)


def client(ctx: IQContext) -> httpx.Client:
    """An HTTP client for the target (certificates of a site CA are the site's concern: not verified here)."""
    assert ctx.target is not None
    return httpx.Client(base_url=ctx.target.rstrip("/"), timeout=30, verify=False, follow_redirects=False)


def _auth(ctx: IQContext) -> dict[str, str]:
    return {"Authorization": f"Bearer {ctx.token}"} if ctx.token else {}


def answer_of(doc: Any, field: str) -> str | None:
    """The value at a dotted path of a JSON answer; ``#`` gives a list's length.

    Example
    -------
    >>> answer_of({"findings": [{"grade": "high"}, {}]}, "findings.#"), answer_of({"a": {"b": 1}}, "a.b")
    ('2', '1')
    """
    for part in field.split("."):
        if part == "#" and isinstance(doc, list):
            doc = len(doc)
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return str(doc)


def baseline_request(ctx: IQContext) -> dict[str, Any]:
    """Method and body (or uploaded file) of a typical task: the first baseline case (GET without cases)."""
    cases = ctx.protocol.baseline.cases
    if cases and cases[0].file:
        return {"method": "POST", "body": None, "file": cases[0].file, "field": ctx.protocol.baseline.upload_field}
    body = cases[0].request if cases and cases[0].request else None
    return {"method": "POST" if body else "GET", "body": body}


def _send(http: httpx.Client, ctx: IQContext, case: Any) -> httpx.Response:
    spec = ctx.protocol.baseline
    if case.file:
        path = Path(case.file)
        with open(path, "rb") as handle:
            return http.post(spec.endpoint, files={spec.upload_field: (path.name, handle.read())}, headers=_auth(ctx))
    if case.request:
        return http.post(spec.endpoint, json=case.request, headers=_auth(ctx))
    return http.get(spec.endpoint, headers=_auth(ctx))


def openapi_routes(ctx: IQContext) -> list[tuple[str, str]]:
    """(method, path) of every operation in the target's OpenAPI document."""
    with client(ctx) as http:
        doc = http.get("/openapi.json").raise_for_status().json()
    return [
        (m.upper(), p)
        for p, ops in doc.get("paths", {}).items()
        for m in ops
        if m.lower() in {"get", "post", "put", "patch", "delete"}
    ]


class _TargetCheck(IQCheck):
    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.target is None:
            return self.not_evaluated("no target service (give --target)")
        try:
            httpx.get(ctx.target.rstrip("/") + "/", timeout=5, verify=False)
        except httpx.HTTPError as err:
            return self.not_evaluated(f"target {ctx.target} not reachable: {err}")
        return self.check(ctx)

    def check(self, ctx: IQContext) -> CheckResult:
        raise NotImplementedError


class FunctionCheck(_TargetCheck):
    key = "function.tests"
    area = "function"
    clause = "002 §4.3.1 a–c, §6.1.3 a"
    title = "functional test cases: interface, data interfaces and main flow answer as accepted"
    impact = "users meet a system that does not work after installation"
    fix = "repair the failing function (configuration, connection) and repeat the test case"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        cases = ctx.protocol.functional_tests
        if not cases:
            return self.not_evaluated("the protocol has no functional test cases")
        rows = []
        with client(ctx) as http:
            for case in cases:
                start = time.perf_counter()
                try:
                    resp = http.request(case.method, case.path, headers=_auth(ctx))
                    status, text = resp.status_code, resp.text
                except httpx.HTTPError as err:
                    status, text = None, str(err)
                ok = status == case.expect_status and (case.expect_text is None or case.expect_text in text)
                rows.append(
                    {
                        "id": case.id,
                        "kind": case.kind,
                        "path": case.path,
                        "expected": case.acceptance,
                        "status": status,
                        "seconds": round(time.perf_counter() - start, 4),
                        "passed": ok,
                    }
                )
        failed = [r["id"] for r in rows if not r["passed"]]
        return self.judge(
            not failed,
            f"{len(rows)} cases accepted",
            f"{len(rows) - len(failed)} of {len(rows)} pass",
            reason=("failed: " + ", ".join(failed)) if failed else "all accepted",
            evidence=[ctx.write_evidence("functional_tests", rows)],
            data={"cases": rows},
        )


def screenshot(url: str, path: Path, *, width: int = 1000, height: int = 700) -> Path:
    """A headless Chromium screenshot of ``url`` (self-signed certificates accepted)."""
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise FileNotFoundError("chromium")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--ignore-certificate-errors",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={path}",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url}")
    return path


def ink_fraction(png: Path) -> float:
    """Share of pixels that differ from the page's most common colour (0 for a blank page)."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(png)[..., :3]
    flat = (img.reshape(-1, 3) * 255).astype(np.uint8)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float(np.any(np.abs(flat.astype(int) - background.astype(int)) > 16, axis=1).mean())


class UiRenderCheck(_TargetCheck):
    key = "function.ui_render"
    area = "function"
    clause = "002 §4.3.1 a"
    title = "each UI page renders in a browser (headless Chromium screenshot not blank)"
    impact = "users see an empty or broken screen after installation"
    fix = "check the static assets and the page's errors in the browser console"

    min_ink = 0.002

    def check(self, ctx: IQContext) -> CheckResult:
        import shutil

        pages = [t for t in ctx.protocol.functional_tests if t.kind == "ui"]
        if not pages:
            return self.not_evaluated("the protocol has no UI test case")
        if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
            return self.not_evaluated("Chromium is not installed")
        rows, evidence = [], []
        for page in pages:
            png = screenshot(f"{ctx.target}{page.path}", ctx.evidence_dir / f"ui-{page.id}.png")
            ink = ink_fraction(png)
            rows.append(
                {"id": page.id, "path": page.path, "ink_fraction": round(ink, 5), "rendered": ink >= self.min_ink}
            )
            evidence.append(png.relative_to(ctx.out).as_posix())
        blank = [r["id"] for r in rows if not r["rendered"]]
        return self.judge(
            not blank,
            f"every page shows content (ink ≥ {self.min_ink:.1%})",
            f"{len(rows) - len(blank)} of {len(rows)} rendered",
            reason=("blank: " + ", ".join(blank)) if blank else "all rendered",
            evidence=[ctx.write_evidence("ui_render", rows), *evidence],
            data={"pages": rows},
        )


class UnauthenticatedRoutesCheck(_TargetCheck):
    key = "security.unauthenticated"
    area = "security"
    clause = "002 §5.1.1, §6.2.1 c–d"
    title = "every non-public route refuses unauthenticated access (routes from the OpenAPI document)"
    impact = "anyone on the network can use or read the device without logging in"
    fix = "put the permission dependency on every route that is not explicitly public"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        public = set(ctx.protocol.security.public_routes)
        if ctx.protocol.security.login_path:
            public.add(ctx.protocol.security.login_path)
        try:
            routes = openapi_routes(ctx)
        except httpx.HTTPError as err:
            return self.not_evaluated(f"no OpenAPI document: {err}")
        probed = [(m, p) for m, p in routes if p not in public]
        if not probed:
            return self.not_evaluated("the OpenAPI document lists no non-public route")
        rows = []
        with client(ctx) as http:
            for method, path in probed:
                resp = http.request(method, fill_path(path), json={} if method in {"POST", "PUT", "PATCH"} else None)
                rows.append(
                    {"method": method, "path": path, "status": resp.status_code, "refused": resp.status_code in DENIED}
                )
        ctx.shared.setdefault("faults_injected", []).append("illegal_access")
        open_routes = [f"{r['method']} {r['path']} → {r['status']}" for r in rows if not r["refused"]]
        return self.judge(
            not open_routes,
            "401/403 on every non-public route",
            f"{len(rows) - len(open_routes)} of {len(rows)} refused",
            reason=("open: " + "; ".join(open_routes)) if open_routes else "all refused",
            evidence=[ctx.write_evidence("unauthenticated_routes", rows)],
            data={"routes": rows},
        )


class WeakCredentialsCheck(_TargetCheck):
    key = "security.weak_credentials"
    area = "security"
    clause = "002 §5.1.1, §6.2.1 c"
    title = "default and weak credentials are refused"
    impact = "an attacker logs in with a default password"
    fix = "remove default accounts; enforce a password policy"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        login = ctx.protocol.security.login_path
        try:
            routes = openapi_routes(ctx)
        except httpx.HTTPError as err:
            return self.not_evaluated(f"no OpenAPI document: {err}")
        weak = ctx.protocol.security.weak_credentials
        rows = []
        with client(ctx) as http:
            if login and login in {p for _, p in routes}:
                for user, password in weak:
                    resp = http.post(login, data={"username": user, "password": password})
                    rows.append(
                        {
                            "try": f"login {user}",
                            "status": resp.status_code,
                            "accepted": resp.status_code < 300 and "token" in resp.text,
                        }
                    )
            else:  # token-only APIs: weak secrets presented as bearer tokens must be refused
                public = set(ctx.protocol.security.public_routes)
                protected = [p for m, p in routes if m == "GET" and p not in public and "{" not in p]
                if not protected:
                    return self.not_evaluated("no login route and no protected GET route to try tokens on")
                for secret in dict.fromkeys(x for pair in weak for x in pair):
                    resp = http.get(protected[0], headers={"Authorization": f"Bearer {secret}"})
                    rows.append(
                        {
                            "try": f"bearer {secret!r} on {protected[0]}",
                            "status": resp.status_code,
                            "accepted": resp.status_code < 300,
                        }
                    )
        accepted = [r["try"] for r in rows if r["accepted"]]
        return self.judge(
            not accepted,
            "every weak credential refused",
            f"{len(accepted)} of {len(rows)} accepted",
            reason=("accepted: " + ", ".join(accepted)) if accepted else "all refused",
            evidence=[ctx.write_evidence("weak_credentials", rows)],
        )


def tls_info(url: str) -> dict[str, Any]:
    """Protocol version and cipher of a TLS handshake with ``url``."""
    parsed = urlparse(url)
    host, port = parsed.hostname or "localhost", parsed.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        return {"version": tls.version(), "cipher": tls.cipher()[0] if tls.cipher() else None}


class TlsCheck(_TargetCheck):
    key = "security.tls"
    area = "security"
    clause = "002 §5.1.1, §5.1.2, §6.2.1 e"
    title = "credentials and data travel over TLS 1.2 or later"
    impact = "passwords and patient data can be read on the network"
    fix = "configure TLS (certificate and key, TLS 1.2+) and turn plain HTTP off"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        assert ctx.target is not None
        parsed = urlparse(ctx.target)
        if parsed.scheme != "https":
            plain_ok = not ctx.protocol.security.require_tls and parsed.hostname in LOOPBACK
            return self.judge(
                plain_ok,
                "https with TLS ≥ 1.2",
                f"plain {parsed.scheme} on {parsed.hostname}",
                reason="credentials would travel in plain text"
                if not plain_ok
                else "loopback-only service and the protocol does not require TLS",
            )
        info = tls_info(ctx.target)
        ok = info["version"] in {"TLSv1.2", "TLSv1.3"}
        return self.judge(ok, "TLSv1.2 or TLSv1.3", f"{info['version']} {info['cipher']}", data=info)


class BaselineCheck(_TargetCheck):
    key = "performance.baseline"
    area = "performance"
    clause = "002 §4.3.2 a, d, §6.1.3 b"
    title = "time per baseline case and accuracy against the validated reference results"
    impact = "the device answers too slowly or wrongly at this site"
    fix = "analyse the slow or wrong cases; adjust resources or acceptance only with the provider"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.baseline
        if not spec.cases:
            return self.not_evaluated("the protocol's baseline has no cases with reference results")
        rows = []
        with client(ctx) as http:
            for case in spec.cases:
                start = time.perf_counter()
                resp = _send(http, ctx, case)
                seconds = time.perf_counter() - start
                answer = None
                if resp.status_code < 300 and spec.answer_field:
                    answer = answer_of(resp.json(), spec.answer_field)
                rows.append(
                    {
                        "id": case.id,
                        "status": resp.status_code,
                        "seconds": round(seconds, 4),
                        "answer": answer,
                        "reference": case.reference,
                        "correct": answer == case.reference,
                    }
                )
        mean_s = sum(r["seconds"] for r in rows) / len(rows)
        correct = sum(r["correct"] for r in rows)
        acc, low, high = accuracy_ci(correct, len(rows))
        problems = []
        if mean_s > spec.max_mean_seconds_per_case:
            problems.append(f"mean {mean_s:.3f} s > {spec.max_mean_seconds_per_case} s")
        if spec.min_accuracy is not None and acc < spec.min_accuracy:
            problems.append(f"accuracy {acc:.3f} < {spec.min_accuracy}")
        data = {"cases": rows, "mean_seconds": mean_s, "accuracy": acc, "accuracy_ci95": [low, high]}
        return self.judge(
            not problems,
            f"mean ≤ {spec.max_mean_seconds_per_case} s; accuracy ≥ {spec.min_accuracy}",
            f"mean {mean_s:.3f} s; accuracy {acc:.3f} (95 % CI {low:.3f}–{high:.3f}, n={len(rows)})",
            reason="; ".join(problems) or "within limits",
            evidence=[ctx.write_evidence("baseline_cases", data)],
            data=data,
        )


class ConcurrencyCheck(_TargetCheck):
    key = "performance.concurrency"
    area = "performance"
    clause = "002 §4.3.2 b–c, §5.3.1, §5.3.2, §6.4.1"
    title = "concurrent users: success rate, mean response, CPU and memory during the task"
    impact = "simultaneous users see errors or slow answers; the server overloads"
    fix = "add workers or hardware; tune batching"

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.baseline
        if not spec.cases:
            return self.not_evaluated("no typical task: the protocol's baseline has no cases")
        users = spec.concurrency_users
        per_user = max(1, spec.concurrency_requests // users)
        proc = listening_process(ctx.target or "")
        stats = load_test(
            ctx.target or "",
            spec.endpoint,
            users=users,
            per_user=per_user,
            token=ctx.token,
            pid=proc.pid if proc else None,
            timeout=max(30.0, 3 * spec.max_mean_response_s),
            max_seconds=300.0,
            **baseline_request(ctx),
        )
        problems = []
        if stats["success_rate"] < spec.min_success_rate:
            problems.append(f"success {stats['success_rate']:.3f} < {spec.min_success_rate}")
        if stats["mean_s"] is None or stats["mean_s"] > spec.max_mean_response_s:
            problems.append(f"mean {stats['mean_s']} s > {spec.max_mean_response_s} s")
        machine_cpu = stats.get("cpu_percent_max", 0) / (psutil.cpu_count() or 1)
        if machine_cpu > spec.max_cpu_percent:
            problems.append(f"CPU {machine_cpu:.0f} % of the machine > {spec.max_cpu_percent} %")
        if stats.get("rss_mb_max", 0) > spec.max_memory_mb:
            problems.append(f"memory {stats['rss_mb_max']:.0f} MB > {spec.max_memory_mb} MB")
        observed = (
            f"{stats['requests']} requests by {users} users: success {stats['success_rate']:.3f}, "
            f"mean {stats['mean_s'] or 0:.3f} s, p95 {stats['p95_s'] or 0:.3f} s"
            + (
                f", CPU max {stats['cpu_percent_max']:.0f} %, RSS max {stats['rss_mb_max']:.0f} MB"
                if "cpu_percent_max" in stats
                else ", target process not visible"
            )
        )
        return self.judge(
            not problems,
            f"success ≥ {spec.min_success_rate}, mean ≤ {spec.max_mean_response_s} s",
            observed,
            reason="; ".join(problems) or "within limits",
            evidence=[ctx.write_evidence("concurrency", stats)],
            data={k: v for k, v in stats.items() if k != "resource_samples"},
        )


class StressCheck(_TargetCheck):
    key = "performance.stress"
    area = "performance"
    clause = "002 §6.4.2 a–d"
    title = "step-up stress: maximum concurrency, response per level, throughput, error rate"
    impact = "the device fails below the concurrency it is specified for"
    fix = "scale the service or lower the declared concurrency with the provider"

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.stress
        if not ctx.protocol.baseline.cases:
            return self.not_evaluated("no typical task: the protocol's baseline has no cases")
        levels = spec.levels if ctx.profile == "full" else spec.levels[: max(2, len(spec.levels) - 1)]
        rows, max_ok = [], 0
        for users in levels:
            s = load_test(
                ctx.target or "",
                ctx.protocol.baseline.endpoint,
                users=users,
                per_user=spec.requests_per_user,
                token=ctx.token,
                timeout=max(30.0, 3 * spec.p95_limit_s),
                max_seconds=300.0,
                **baseline_request(ctx),
            )
            error_rate = 1 - s["success_rate"]
            within = s["p95_s"] is not None and s["p95_s"] <= spec.p95_limit_s and error_rate <= spec.max_error_rate
            rows.append(
                {
                    "users": users,
                    "mean_s": s["mean_s"],
                    "p95_s": s["p95_s"],
                    "error_rate": error_rate,
                    "throughput_rps": s["throughput_rps"],
                    "within_limits": within,
                }
            )
            if not within:
                break
            max_ok = users
        figure = _plot_stress(ctx, rows, spec.p95_limit_s)
        return self.judge(
            max_ok >= spec.expected_max_concurrency,
            f"maximum concurrency ≥ {spec.expected_max_concurrency} (p95 ≤ {spec.p95_limit_s} s, "
            f"errors ≤ {spec.max_error_rate})",
            f"maximum concurrency {max_ok} of levels {levels}",
            evidence=[ctx.write_evidence("stress", rows), figure],
            data={"levels": rows, "max_concurrency": max_ok},
        )


def _wait_ready(http: httpx.Client, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http.get("/v2/health/ready").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


class DependencyOutageCheck(_TargetCheck):
    key = "reliability.dependency"
    area = "reliability"
    clause = "002 §6.3.1 c"
    title = "a stopped dependency gives a clear not-ready answer naming it, the service stays up and recovers"
    impact = "an outage of the database or PACS crashes the device or fails silently"
    fix = "make readiness check every dependency and name it; reconnect when it returns"

    def check(self, ctx: IQContext) -> CheckResult:
        import subprocess

        deps = ctx.protocol.dependencies
        if not deps:
            return self.not_evaluated("the protocol names no dependency with stop/start commands")
        rows = []
        with client(ctx) as http:
            for dep in deps:
                if not _wait_ready(http, 30.0):
                    rows.append({"dependency": dep.name, "problem": "not ready before the outage"})
                    continue
                subprocess.run(dep.stop, capture_output=True, timeout=60, check=False)
                ctx.shared.setdefault("faults_injected", []).append("dependency_stopped")
                answer, deadline = None, time.monotonic() + 15
                while time.monotonic() < deadline:
                    answer = http.get("/v2/health/ready")
                    if answer.status_code != 200:
                        break
                    time.sleep(0.3)
                named = answer is not None and answer.status_code >= 500 and dep.name.lower() in answer.text.lower()
                alive = http.get("/v2/health/live").status_code == 200
                subprocess.Popen(
                    dep.start, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
                started = time.monotonic()
                recovered = round(time.monotonic() - started, 2) if _wait_ready(http, dep.recover_within_s) else None
                rows.append(
                    {
                        "dependency": dep.name,
                        "ready_during_outage": answer.status_code if answer else None,
                        "answer": answer.text[:200] if answer else None,
                        "named_in_answer": named,
                        "service_alive": alive,
                        "recovered_after_s": recovered,
                    }
                )
        bad = [
            r["dependency"]
            for r in rows
            if not (r.get("named_in_answer") and r.get("service_alive") and r.get("recovered_after_s") is not None)
        ]
        return self.judge(
            not bad,
            "not-ready answer naming the dependency; live; ready again after restart",
            "; ".join(
                f"{r['dependency']}: ready {r.get('ready_during_outage')}, named "
                f"{r.get('named_in_answer')}, recovered {r.get('recovered_after_s')}"
                for r in rows
            ),
            reason=("not handled: " + ", ".join(bad)) if bad else "clear error and recovery",
            evidence=[ctx.write_evidence("dependency_outage", rows)],
            data={"dependencies": rows},
        )


def _plot_stress(ctx: IQContext, rows: list[dict[str, Any]], limit: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aimd.core.atomic import atomic_file

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    users = [r["users"] for r in rows]
    a.plot(users, [r["mean_s"] or 0 for r in rows], marker="o", label="mean")
    a.plot(users, [r["p95_s"] or 0 for r in rows], marker="o", label="p95")
    a.axhline(limit, color="grey", linestyle="--", label="p95 limit")
    a.set_xlabel("concurrent users")
    a.set_ylabel("response (s)")
    a.legend(fontsize=7)
    b.plot(users, [r["throughput_rps"] for r in rows], marker="o", color="green")
    b.set_xlabel("concurrent users")
    b.set_ylabel("throughput (req/s)")
    fig.tight_layout()
    path = ctx.evidence_dir / "stress.png"
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path.relative_to(ctx.out).as_posix()


SERVICE_CHECKS: list[type[IQCheck]] = [
    FunctionCheck,
    UiRenderCheck,
    UnauthenticatedRoutesCheck,
    WeakCredentialsCheck,
    TlsCheck,
    BaselineCheck,
    ConcurrencyCheck,
    StressCheck,
    DependencyOutageCheck,
]

__all__ = [
    "SERVICE_CHECKS",
    "BaselineCheck",
    "ConcurrencyCheck",
    "DependencyOutageCheck",
    "FunctionCheck",
    "StressCheck",
    "TlsCheck",
    "UiRenderCheck",
    "UnauthenticatedRoutesCheck",
    "WeakCredentialsCheck",
    "accuracy_ci",
    "answer_of",
    "fill_path",
    "ink_fraction",
    "openapi_routes",
    "screenshot",
    "tls_info",
]
