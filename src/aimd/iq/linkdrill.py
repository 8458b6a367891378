"""The service's own links under faults (002 §6.3.1 b): ``aimd serve`` started with its PACS and its database
reached through fault injectors, and the typical task sent to it.

:class:`DrillService` starts ``aimd serve`` — the installed release's when the run has a prefix, this
interpreter's otherwise; as the release's service account when it has one and the run is root, as the
installed services run — on a free loopback port with the site's model and
options, ``--pacs`` and ``--db`` pointing at the injectors (so the service's own connections carry the
faults), and an API token of its own. :func:`send` runs the typical task once — a study pulled from the
PACS (results stored back) or an uploaded case — synchronously or as a job that is polled to its end,
and describes the answer: status, seconds, the answer field, the error message, ``Retry-After``.

Example
-------
>>> proxied_url("postgresql+psycopg://u:p@db.example:5432/aimd", 40001)
'postgresql+psycopg://u:p@127.0.0.1:40001/aimd'
>>> upstream_of("http://127.0.0.1:8042/dicom-web")
('127.0.0.1', 8042)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from aimd.core.errors import InvalidInputError
from aimd.iq.account import ServiceAccount
from aimd.iq.checks.target import answer_of
from aimd.iq.specs import LinkDrill

DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432}


def upstream_of(url: str) -> tuple[str, int]:
    """(host, port) a URL connects to."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0]
    if not parts.hostname:
        raise InvalidInputError(f"{url!r} names no host", where="links", hint="give a URL with host and port")
    return parts.hostname, parts.port or DEFAULT_PORTS.get(scheme, 80)


def proxied_url(url: str, port: int, host: str = "127.0.0.1") -> str:
    """``url`` with its host and port replaced by the injector's."""
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{auth}{host}:{port}"))


def database_link(url: str | None) -> str | None:
    """Why a database URL has no network link to fault (``None`` when it has one)."""
    if not url or url.startswith("sqlite") or "://" not in url:
        return "not applicable: the database is SQLite, a file of the service with no network link"
    if url.split("://", 1)[0].split("+")[0] not in ("postgresql", "postgres"):
        return f"not applicable: no fault injection for database URLs of kind {url.split('://', 1)[0]!r}"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DrillService:
    """``aimd serve`` for the drill: started on enter, its token created, stopped on exit."""

    def __init__(
        self,
        spec: LinkDrill,
        root: Path,
        *,
        pacs_url: str | None,
        database_url: str | None,
        case: str | None,
        python: str | None = None,
        account: ServiceAccount | None = None,
        config: Path | None = None,
    ) -> None:
        self.spec = spec
        self.python = python
        self.config = config
        self.account: ServiceAccount | None = None
        self.runs_as = "the caller"
        if account is not None and os.geteuid() == 0:
            why = account.cannot_run(python or sys.executable, root.parent)
            if why is None:
                self.account, self.runs_as = account, f"{account.name} (uid {account.uid})"
            else:  # e.g. the run's output lies in a folder private to root
                self.runs_as = f"root: the account {account.name} cannot enter {root.parent} ({why})"
        self.root = root
        self.pacs_url = pacs_url
        self.database_url = database_url
        self.case = case
        self.model = spec.model.split("=", 1)[0]
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = root / "serve.log"

    def _aimd(self, *args: str) -> list[str]:
        db = ["--db", self.database_url] if self.database_url else []
        return [self.python or sys.executable, "-m", "aimd.cli.main", *args, "--data", str(self.root / "data"), *db]

    def __enter__(self) -> DrillService:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed release: its own code
        if self.python is None:  # this interpreter's aimd, wherever it is imported from
            env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        if self.config is not None:  # the install's settings, as its own services read them
            env["AIMD_CONFIG"] = str(self.config)
        as_account: dict[str, Any] = {}
        if self.account is not None:  # the drill's folder becomes the account's, as data/ of an install
            self.root.mkdir(parents=True, exist_ok=True)
            for path in (self.root, *self.root.rglob("*")):
                os.chown(path, self.account.uid, self.account.gid)
            env, as_account = self.account.env(env), self.account.popen_kwargs()
        made = subprocess.run(
            [*self._aimd("serve", "token", "create", "--scope", "infer", "--name", "iq-links"), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
            **as_account,
        )
        if made.returncode != 0:
            raise RuntimeError(f"aimd serve token create failed: {made.stderr.strip()[-400:]}")
        self.token = json.loads(made.stdout)["token"]
        pacs = ["--pacs", self.pacs_url] if self.pacs_url else []
        cmd = [
            *self._aimd("serve", "--model", self.spec.model, "--port", str(self.port)),
            *pacs,
            *self.spec.serve_args,
        ]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, **as_account)
        if not self.wait_ready(300):
            self.__exit__()
            raise RuntimeError(f"aimd serve did not become ready: {self.log_tail()}")
        return self

    def log_tail(self, n: int = 600) -> str:
        return self._log.read_text(errors="replace")[-n:] if self._log.is_file() else ""

    def wait_ready(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return True
            time.sleep(0.3)
        return False

    def alive(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/health/live", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def __exit__(self, *_exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)


def _request(svc: DrillService, http: httpx.Client, prefer_async: bool) -> httpx.Response:
    headers = {"Authorization": f"Bearer {svc.token}", **({"Prefer": "respond-async"} if prefer_async else {})}
    path = f"/v2/models/{svc.model}/infer"
    if svc.spec.pacs_url:
        body = {"study_uid": svc.spec.study_uid, "series_uid": svc.spec.series_uid, "store": svc.spec.store}
        return http.post(path, json=body, headers=headers)
    assert svc.case is not None
    case = Path(svc.case)
    return http.post(path, files={"files": (case.name, case.read_bytes())}, headers=headers)


def _describe(resp: httpx.Response, field: str | None) -> dict[str, Any]:
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    row: dict[str, Any] = {"status": resp.status_code, "retry_after": resp.headers.get("retry-after")}
    if resp.status_code < 300:
        row["answer"] = answer_of(doc, field) if field else None
    else:
        row["error"] = str(doc.get("message") or doc.get("error") or resp.text)[:300] if isinstance(doc, dict) else ""
        row["where"] = doc.get("where") if isinstance(doc, dict) else None
    return row


def _poll(svc: DrillService, http: httpx.Client, status_url: str, timeout_s: float) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {svc.token}"}
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = http.get(status_url, headers=auth).json()
        if job.get("status") in ("done", "failed"):
            break
        time.sleep(0.2)
    status = job.get("status")
    if status == "done":
        field = svc.spec.answer_field
        answer = answer_of(http.get(job["result_url"], headers=auth).json(), field) if field else None
        return {"status": 200, "job": "done", "answer": answer}
    if status == "failed":
        return {"status": 502, "job": "failed", "error": str(job.get("error"))[:300]}
    return {"status": None, "job": status or "lost", "error": f"job still {status!r} after {timeout_s} s", "hung": True}


def send(svc: DrillService, *, timeout_s: float, prefer_async: bool = False) -> dict[str, Any]:
    """One typical task through the service: status, seconds, answer or error (a job: polled to its end)."""
    start = time.perf_counter()
    try:
        with httpx.Client(base_url=svc.url, timeout=timeout_s) as http:
            resp = _request(svc, http, prefer_async)
            if prefer_async and resp.status_code == 202:
                row = _poll(svc, http, resp.json()["status_url"], timeout_s)
            else:
                row = _describe(resp, svc.spec.answer_field)
    except httpx.TimeoutException as err:
        row = {"status": None, "error": f"{type(err).__name__} after {timeout_s} s", "hung": True}
    except httpx.HTTPError as err:
        row = {"status": None, "error": f"{type(err).__name__}: {err}"}
    return {**row, "seconds": round(time.perf_counter() - start, 3)}


__all__ = ["DrillService", "database_link", "proxied_url", "send", "upstream_of"]
