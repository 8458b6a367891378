"""Checks against a running target: function (002 §4.3.1), security (§5.1, §6.2) and a dependency outage (§6.3.1 c).

Example
-------
>>> [c.key for c in SERVICE_CHECKS][:2]
['function.tests', 'function.ui_render']
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.performance import PERFORMANCE_CHECKS
from aimd.iq.checks.target import (
    LOOPBACK,
    TargetCheck,
    auth_headers,
    client,
    fill_path,
    listed,
    openapi_routes,
    probe,
)


class FunctionCheck(TargetCheck):
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
        # a case on the platform runs when the run was given its URL; otherwise it is named as not run
        skipped = [c.id for c in cases if system_url(ctx, c.system) is None]
        rows = []
        for case in cases:
            base = system_url(ctx, case.system)
            if base is None:
                continue
            # the service's token goes to the service only; platform cases are its public pages
            headers = auth_headers(ctx.token) if case.system == "service" else {}
            start = time.perf_counter()
            with client(ctx, base) as http:
                try:
                    resp = http.request(case.method, case.path, headers=headers)
                    status, text = resp.status_code, resp.text
                except httpx.HTTPError as err:
                    status, text = None, str(err)
            # a UI page's text is drawn by its scripts: function.ui_render looks for it in the rendered page
            shown = case.expect_text is None or case.kind == "ui" or case.expect_text in text
            ok = status == case.expect_status and shown
            rows.append(
                {
                    "id": case.id,
                    "kind": case.kind,
                    "system": case.system,
                    "path": case.path,
                    "expected": case.acceptance,
                    "status": status,
                    "seconds": round(time.perf_counter() - start, 4),
                    "passed": ok,
                }
            )
        failed = [r["id"] for r in rows if not r["passed"]]
        result = self.tally(
            ctx,
            rows,
            failed,
            expected=f"{len(rows)} cases accepted",
            counted="pass",
            found=("failed", "all accepted"),
            evidence="functional_tests",
            data_key="cases",
        )
        if skipped:
            result.observed += f"; {', '.join(skipped)} not run (no platform URL: give --platform)"
            result.data["not_run"] = skipped
        return result


def _browser() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _chromium(url: str, *args: str) -> bytes:
    """Run headless Chromium on ``url`` (self-signed certificates accepted); its standard output."""
    import subprocess

    browser = _browser()
    if browser is None:
        raise FileNotFoundError("chromium")
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--ignore-certificate-errors", "--hide-scrollbars"]
    done = subprocess.run([browser, *flags, *args, url], capture_output=True, timeout=120, check=False)
    return done.stdout


def screenshot(url: str, path: Path, *, width: int = 1000, height: int = 700) -> Path:
    """A headless Chromium screenshot of ``url`` (self-signed certificates accepted)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _chromium(url, f"--window-size={width},{height}", f"--screenshot={path}")
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url}")
    return path


def rendered_dom(url: str) -> str:
    """The page's document after its scripts ran (headless Chromium ``--dump-dom``)."""
    return _chromium(url, "--dump-dom").decode("utf-8", errors="replace")


def ink_fraction(png: Path) -> float:
    """Share of pixels that differ from the page's most common colour (0 for a blank page)."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(png)[..., :3]
    flat = (img.reshape(-1, 3) * 255).astype(np.uint8)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    return float(np.any(np.abs(flat.astype(int) - background.astype(int)) > 16, axis=1).mean())


def system_url(ctx: IQContext, system: str) -> str | None:
    """The base URL of the system a test case is on: the service (``--target``) or the platform (``--platform``)."""
    return (ctx.platform if system == "platform" else ctx.target) or None


class UiRenderCheck(IQCheck):
    key = "function.ui_render"
    area = "function"
    clause = "002 §4.3.1 a"
    title = "each UI page loads and renders in a browser (headless Chromium: content drawn, expected text shown)"
    impact = "users see an empty or broken screen after installation"
    fix = "check the static assets and the page's errors in the browser console"

    # share of the 1000×700 screenshot that is not background: the platform's login page draws ~7 %, a
    # one-line error answer (404 JSON) ~0.3 %, an empty page 0
    min_ink = 0.005

    def run(self, ctx: IQContext) -> CheckResult:
        pages = [t for t in ctx.protocol.functional_tests if t.kind == "ui"]
        if not pages:
            return self.not_evaluated("the protocol has no UI test case")
        unserved = [f"{p.id} ({p.system})" for p in pages if system_url(ctx, p.system) is None]
        if unserved:
            return self.not_evaluated(
                f"no URL of the system the UI pages {', '.join(unserved)} are on "
                "(give --target for the service, --platform for the annotation platform)"
            )
        if _browser() is None:
            return self.not_evaluated("Chromium is not installed")
        for system in dict.fromkeys(p.system for p in pages):  # as every check against a target: it must answer
            base = str(system_url(ctx, system)).rstrip("/")
            try:
                httpx.get(base + "/", timeout=5, verify=False)
            except httpx.HTTPError as err:
                return self.not_evaluated(f"the {system} at {base} does not answer: {err}")
        rows, evidence = [], []
        for page in pages:
            url = f"{str(system_url(ctx, page.system)).rstrip('/')}{page.path}"
            row = self._render(ctx, page, url)
            if "screenshot" in row:
                evidence.append(row["screenshot"])
            rows.append(row)
        broken = [f"{r['id']} ({r['problem']})" for r in rows if r["problem"]]
        return self.tally(
            ctx,
            rows,
            broken,
            expected=f"every page answers, draws content (ink ≥ {self.min_ink:.1%}) and shows its expected text",
            counted="rendered",
            found=("not rendered", "all rendered"),
            evidence="ui_render",
            data_key="pages",
            extra_evidence=evidence,
        )

    def _render(self, ctx: IQContext, page: Any, url: str) -> dict[str, Any]:
        row: dict[str, Any] = {"id": page.id, "system": page.system, "path": page.path}
        try:
            row["status"] = httpx.get(url, verify=False, timeout=30, follow_redirects=True).status_code
        except httpx.HTTPError as err:
            return {**row, "status": None, "problem": f"no answer: {type(err).__name__}"}
        png = screenshot(url, ctx.evidence_dir / f"ui-{page.id}.png")
        row["screenshot"] = png.relative_to(ctx.out).as_posix()
        row["ink_fraction"] = round(ink_fraction(png), 5)
        if page.expect_text is not None:
            row["text_shown"] = page.expect_text in rendered_dom(url)
        problems = [
            f"HTTP {row['status']}" if row["status"] != page.expect_status else "",
            "blank" if row["ink_fraction"] < self.min_ink else "",
            f"{page.expect_text!r} not shown" if row.get("text_shown") is False else "",
        ]
        row["problem"] = "; ".join(p for p in problems if p)
        row["rendered"] = not row["problem"]
        return row


class UnauthenticatedRoutesCheck(TargetCheck):
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
        with client(ctx) as http:
            rows = [
                probe(http, m, fill_path(p), label=f"{m} {p}", json={} if m in {"POST", "PUT", "PATCH"} else None)
                for m, p in probed
            ]
        ctx.shared.setdefault("faults_injected", []).append("illegal_access")
        open_routes = [f"{r['try']} → {r['status']}" for r in rows if not r["refused"]]
        return self.tally(
            ctx,
            rows,
            open_routes,
            expected="401/403 on every non-public route",
            counted="refused",
            found=("open", "all refused"),
            evidence="unauthenticated_routes",
            data_key="routes",
            sep="; ",
        )


class WeakCredentialsCheck(TargetCheck):
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
        with client(ctx) as http:
            if login and login in {p for _, p in routes}:
                rows = [
                    probe(http, "POST", login, label=f"login {user}", data={"username": user, "password": password})
                    for user, password in weak
                ]
            else:  # token-only APIs: weak secrets presented as bearer tokens must be refused
                public = set(ctx.protocol.security.public_routes)
                protected = [p for m, p in routes if m == "GET" and p not in public and "{" not in p]
                if not protected:
                    return self.not_evaluated("no login route and no protected GET route to try tokens on")
                rows = [
                    probe(http, "GET", protected[0], label=f"bearer {s!r} on {protected[0]}", headers=auth_headers(s))
                    for s in dict.fromkeys(x for pair in weak for x in pair)
                ]
        accepted = [r["try"] for r in rows if r["status"] is not None and r["status"] < 300]
        return self.judge(
            not accepted,
            "every weak credential refused",
            f"{len(accepted)} of {len(rows)} accepted",
            reason=listed("accepted", accepted, "all refused"),
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


class TlsCheck(TargetCheck):
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


class DependencyOutageCheck(TargetCheck):
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
            reason=listed("not handled", bad, "clear error and recovery"),
            evidence=[ctx.write_evidence("dependency_outage", rows)],
            data={"dependencies": rows},
        )


SERVICE_CHECKS: list[type[IQCheck]] = [
    FunctionCheck,
    UiRenderCheck,
    UnauthenticatedRoutesCheck,
    WeakCredentialsCheck,
    TlsCheck,
    *PERFORMANCE_CHECKS,
    DependencyOutageCheck,
]

__all__ = [
    "SERVICE_CHECKS",
    "DependencyOutageCheck",
    "FunctionCheck",
    "TlsCheck",
    "UiRenderCheck",
    "UnauthenticatedRoutesCheck",
    "WeakCredentialsCheck",
    "ink_fraction",
    "screenshot",
    "tls_info",
]
