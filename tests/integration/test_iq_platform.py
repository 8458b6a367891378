"""IQ checks against the running annotation platform (`aimd platform serve` on 127.0.0.1 with a temp data
folder): MFA, least privilege, command audit and import integrity (002 §6.2.1 c–d, §6.2.2 f–g).

A correctly configured platform passes; the same platform with MFA switched off for every role, a
protocol that denies a right the platform grants, a tampered audit log and a file that differs from its
declared hash each fail with a deviation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aimd.core.otp import next_code
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume

pytestmark = pytest.mark.integration
KEYS = ["security.mfa", "security.least_privilege", "security.import_integrity", "logs.command_audit"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Platform:
    """`aimd platform init` + `aimd platform serve` in a subprocess, stopped at the end."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.data = root / "data"
        full_env = {**os.environ, **(env or {})}
        init = subprocess.run(
            [sys.executable, "-m", "aimd.cli.main", "platform", "init", "--data", str(self.data), "--json"],
            capture_output=True,
            text=True,
            env=full_env,
            check=True,
        )
        self.admin_file = root / "admin.json"
        self.admin_file.write_text(init.stdout)
        self.admin_file.chmod(0o600)
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aimd.cli.main", "platform", "serve", "--data", str(self.data)]
            + ["--port", str(self.port)],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise AssertionError("the platform did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def case_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(7)
    arr = (rng.normal(0, 20, (6, 24, 24)) - 800).astype(np.int16)
    path = tmp_path_factory.mktemp("case") / "ct.nii.gz"
    write_nifti(Volume(arr, spacing=(0.8, 0.8, 2.0), modality="CT"), path)
    return path


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    p = Platform(tmp_path_factory.mktemp("platform"))
    yield p
    p.stop()


def _protocol(case_file: Path, declared: str | None = None):
    from aimd.iq.template import protocol_template

    proto = protocol_template("1.0.0")
    assert proto.platform is not None
    proto.platform.import_file = str(case_file)
    proto.platform.import_sha256 = declared or hashlib.sha256(case_file.read_bytes()).hexdigest()
    return proto


def _run(proto, out: Path, p: Platform):
    from aimd.iq.runner import run_iq

    report = run_iq(proto, out, platform=p.url, platform_admin=p.admin_file, only=KEYS, pdf=False)
    return {c.key: c for c in report.checks}


def test_configured_platform_passes_mfa_roles_audit_and_import(platform: Platform, case_file: Path, tmp_path):
    checks = _run(_protocol(case_file), tmp_path / "ok", platform)
    assert {k: c.verdict.value for k, c in checks.items()} == dict.fromkeys(KEYS, "pass"), {
        k: c.reason for k, c in checks.items()
    }
    mfa = {r["role"]: r for r in checks["security.mfa"].data["roles"]}
    assert set(mfa) == {"admin", "reviewer", "arbiter", "qc"}
    assert all(r["password_only_status"] == 401 and r["with_totp_status"] == 200 for r in mfa.values())
    probes = checks["security.least_privilege"].data["probes"]
    assert {r["role"] for r in probes} == {"intake", "annotator", "reviewer", "qc", "arbiter", "admin"}
    assert all(r["status"] == 403 for r in probes)
    audit = checks["logs.command_audit"].data
    assert audit["chain"]["ok"] and not audit["missing"] and len(audit["found"]) >= 12
    imp = checks["security.import_integrity"].data
    assert imp["file_sha256"] == imp["platform_nifti_sha256"] == imp["declared_sha256"]
    # the run retired its probe accounts
    admin = json.loads(platform.admin_file.read_text())
    with httpx.Client(base_url=platform.url) as http:
        token = http.post(
            "/api/v1/auth/login",
            json={**{k: admin[k] for k in ("username", "password")}, "totp": next_code(admin["totp_secret"])},
        ).json()["token"]
        users = http.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"}).json()
    assert all(u["disabled"] for u in users if u["username"].startswith("iq-"))


def test_stricter_matrix_and_altered_file_fail(platform: Platform, case_file: Path, tmp_path: Path) -> None:
    proto = _protocol(case_file, declared="0" * 64)
    assert proto.platform is not None
    # the site's protocol says annotators may not run pre-labels; the platform lets them
    proto.platform.roles["annotator"].remove("prelabel.run")
    proto.platform.samples_per_role = 30
    checks = _run(proto, tmp_path / "bad", platform)
    lp = checks["security.least_privilege"]
    assert lp.verdict.value == "fail" and "annotator → prelabel.run" in lp.reason and lp.deviation is not None
    imp = checks["security.import_integrity"]
    assert imp.verdict.value == "fail" and "declared" in imp.reason


def test_platform_without_mfa_and_with_tampered_audit_fails(case_file: Path, tmp_path: Path) -> None:
    p = Platform(tmp_path / "nomfa", env={"AIMD_PLATFORM__MFA_ROLES": "[]"})
    try:
        # someone rewrites history: the first audit entry's actor is changed behind the platform's back
        db = sqlite3.connect(next(p.data.glob("*.db")))
        triggers = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute("UPDATE aimd_audit_log SET actor = 'nobody' WHERE seq = (SELECT MIN(seq) FROM aimd_audit_log)")
        db.commit()
        db.close()
        checks = _run(_protocol(case_file), tmp_path / "out", p)
    finally:
        p.stop()
    mfa = checks["security.mfa"]
    assert mfa.verdict.value == "fail" and mfa.deviation is not None and mfa.deviation.critical
    assert all(r["password_only_status"] == 200 for r in mfa.data["roles"])
    audit = checks["logs.command_audit"]
    assert audit.verdict.value == "fail" and "chain broken" in audit.reason


def test_no_platform_means_not_evaluated(tmp_path: Path, case_file: Path) -> None:
    from aimd.iq.runner import run_iq

    report = run_iq(_protocol(case_file), tmp_path, target="http://127.0.0.1:9", only=KEYS, pdf=False)
    assert {c.verdict.value for c in report.checks} == {"not_evaluated"}


CHROMIUM = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")


def _ui(proto, out: Path, url: str):
    from aimd.iq.checks.base import IQContext
    from aimd.iq.checks.service import UiRenderCheck

    return UiRenderCheck().execute(IQContext(protocol=proto, out=out, platform=url))


@needs_chromium
def test_platform_login_page_renders_in_chromium(platform: Platform, case_file: Path, tmp_path: Path) -> None:
    res = _ui(_protocol(case_file), tmp_path, platform.url)  # the template's U1: the workspace's login screen
    assert res.verdict.value == "pass", res.reason
    page = res.data["pages"][0]
    assert page["status"] == 200 and page["text_shown"] and page["ink_fraction"] > 0.02
    assert (tmp_path / page["screenshot"]).stat().st_size > 5000


@needs_chromium
def test_missing_and_broken_platform_pages_fail(platform: Platform, case_file: Path, tmp_path: Path) -> None:
    import aimd.platform
    from aimd.iq.protocol import FunctionalTestCase

    proto = _protocol(case_file)
    proto.functional_tests.append(
        FunctionalTestCase(
            id="U2", kind="ui", system="platform", description="a screen", path="/review.html", acceptance="shown"
        )
    )
    res = _ui(proto, tmp_path / "missing", platform.url)
    assert res.verdict.value == "fail" and "U2 (HTTP 404" in res.reason and "U1" not in res.reason
    # the workspace's page and styles with a script bundle that fails to load: the bar is drawn, no login form
    site = tmp_path / "broken"
    static = Path(aimd.platform.__file__).parent / "static"
    shutil.copytree(static, site)
    (site / "app.js").write_text("throw new Error('bundle truncated');\n")
    port = _port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        res = _ui(_protocol(case_file), tmp_path / "out", f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(timeout=10)
    page = res.data["pages"][0]
    assert res.verdict.value == "fail" and page["status"] == 200 and page["text_shown"] is False
    assert "not shown" in res.reason and res.deviation is not None


def _nav(proto, out: Path, url: str, admin_file: Path):
    from aimd.iq.runner import run_iq

    report = run_iq(proto, out, platform=url, platform_admin=admin_file, only=["function.ui_navigation"], pdf=False)
    (check,) = report.checks
    return check


@contextlib.contextmanager
def _front(upstream: str, replaced: dict[str, bytes]) -> Iterator[str]:
    """A loopback front for the platform that answers the paths in ``replaced`` itself (a damaged static
    file) and passes every other request through."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    http = httpx.Client(base_url=upstream, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            path = self.path.split("?")[0]
            if path in replaced:
                status, headers, body = 200, {"content-type": "text/javascript"}, replaced[path]
            else:
                length = int(self.headers.get("content-length") or 0)
                sent = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
                r = http.request(self.command, self.path, headers=sent, content=self.rfile.read(length))
                skip = {"content-length", "content-encoding", "transfer-encoding", "connection"}
                status, headers, body = r.status_code, {k: v for k, v in r.headers.items() if k not in skip}, r.content
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        http.close()


@needs_chromium
def test_platform_menus_language_and_logout_work_in_chromium(platform: Platform, case_file: Path, tmp_path: Path):
    res = _nav(_protocol(case_file), tmp_path, platform.url, platform.admin_file)
    assert res.verdict.value == "pass", res.reason
    steps = {r["step"]: r for r in res.data["steps"]}
    assert list(steps) == ["login screen", "sign in", "menu #/tasks", "menu #/admin", "language", "log out"]
    before, after = steps["language"]["language"]["before"], steps["language"]["language"]["after"]
    assert before[0] != after[0] and before[1] != after[1], (before, after)  # document language and menu text
    assert steps["log out"]["token_after_logout"] == 401  # the browser's log-out ended the session on the server
    for row in steps.values():
        assert (tmp_path / row["screenshot"]).stat().st_size > 5000 and row["ink_fraction"] > 0.02, row


@needs_chromium
def test_platform_menus_fail_on_a_missing_menu_and_a_broken_bundle(platform: Platform, case_file: Path, tmp_path):
    proto = _protocol(case_file)
    assert proto.platform is not None
    proto.platform.ui_role = "annotator"  # the protocol expects the projects screen of a role that has none
    res = _nav(proto, tmp_path / "menu", platform.url, platform.admin_file)
    assert res.verdict.value == "fail" and "menu #/admin: the menu has no entry #/admin" in res.reason, res.reason
    assert [r["passed"] for r in res.data["steps"]] == [True, True, True, False]
    # the installed script bundle throws: no login screen, and the page's error is named
    with _front(platform.url, {"/app.js": b"throw new Error('bundle truncated');\n"}) as url:
        res = _nav(_protocol(case_file), tmp_path / "bundle", url, platform.admin_file)
    (step,) = res.data["steps"]
    assert res.verdict.value == "fail" and step["step"] == "login screen", res.reason
    assert "#username" in step["problem"] and "script error: bundle truncated" in step["problem"], step
