"""Helpers of the workspace tests and the UI benchmark: a platform served by `aimd platform serve`
(a real process on 127.0.0.1) and Debian's Chromium driven by Playwright with WebGL2 through SwiftShader."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aimd.core.otp import next_code

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PASSWORD = "workspace pass 2024 ok"
MFA_ALL = ["admin", "reviewer", "arbiter", "qc", "annotator", "intake"]


@dataclass
class Served:
    """A running `aimd platform serve` with one account per name (password + TOTP secret)."""

    url: str
    data: Path
    process: subprocess.Popen[bytes]
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def totp(self, user: str) -> str:
        return str(next_code(self.secrets[user]["totp_secret"]))

    def api(self, user: str) -> httpx.Client:
        if user not in self.tokens:
            body = {"username": user, "password": PASSWORD, "totp": self.totp(user)}
            r = httpx.post(f"{self.url}/api/v1/auth/login", json=body, timeout=30)
            r.raise_for_status()
            self.tokens[user] = r.json()["token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.tokens[user]}"}, timeout=120)


ARTEFACTS = Path(os.environ.get("AIMD_TEST_ARTEFACTS", tempfile.gettempdir())) / "aimd-workspace-screens"


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot as a test artefact (``$AIMD_TEST_ARTEFACTS/aimd-workspace-screens/<name>.png``)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(folder: Path, data: Path, db: str | None = None) -> tuple[subprocess.Popen[bytes], str, Any]:
    """`aimd platform serve` on ``data`` (and the database ``db``: default SQLite in ``data``) and a free
    loopback port, once ready: (process, url, log file)."""
    port = free_port()
    env = {**os.environ, "AIMD_PLATFORM__MFA_ROLES": json.dumps(MFA_ALL)}
    code = "import sys; from aimd.cli.main import run; sys.argv[0] = 'aimd'; run()"
    log = (folder / "serve.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "platform", "serve", "--data", str(data), "--port", str(port)]
        + (["--db", db] if db else []),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"aimd platform serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return proc, url, log
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            raise RuntimeError("aimd platform serve did not become ready in 60 s")
        time.sleep(0.2)


@contextlib.contextmanager
def serve_platform(folder: Path, users: dict[str, str], db: str | None = None) -> Iterator[Served]:
    """Accounts ``users`` (name → role, all with TOTP), then `aimd platform serve` on a free loopback port
    (database ``db``: default SQLite in the data folder)."""
    from aimd.core.config import PlatformSettings
    from aimd.platform import Platform
    from aimd.platform.auth import create_user

    data = folder / "platform"
    settings = PlatformSettings(mfa_roles=MFA_ALL)
    platform = Platform.open(data, database_url=db, settings=settings)
    secrets = {}
    with platform.sessions() as session:
        for name, role in users.items():
            secrets[name] = create_user(
                session,
                platform.audit,
                settings,
                username=name,
                role=role,
                password=PASSWORD,
                clearance=2,
                actor="test",
            )[1]
        session.commit()
    platform.close()
    proc, url, log = start_serve(folder, data, db)
    try:
        yield Served(url=url, data=data, process=proc, secrets=secrets)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def chromium(viewport: tuple[int, int] = (1400, 900)) -> Iterator[Any]:
    """A headless Chromium (Debian's binary, no downloaded browser) with WebGL2 through SwiftShader."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, locale="en-US")
        finally:
            browser.close()


def login(page: Any, served: Served, user: str) -> None:
    """Log in through the login screen with password and TOTP."""
    page.goto(f"{served.url}/#/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.fill("#totp", served.totp(user))
    page.click("#login")
    page.wait_for_selector("#task-list")


def canvas_pixels(png: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def blank_reason(png: bytes) -> str | None:
    """Why a canvas screenshot counts as blank (one flat colour, or almost nothing lit), or None."""
    px = canvas_pixels(png)
    lit = float((px.max(axis=2) > 24).mean())
    spread = float(px.std())
    if spread < 4:
        return f"flat image (pixel standard deviation {spread:.1f})"
    if lit < 0.02:
        return f"only {lit:.1%} of the pixels are lit"
    return None


def npy_array(content: bytes) -> np.ndarray:
    return np.load(io.BytesIO(content), allow_pickle=False)
