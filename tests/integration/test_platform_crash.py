"""kill -9 of the platform server during concurrent saves: every acknowledged save survives, byte-identical
(001 §10.2.2–§10.2.3), on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from platform_support import cube_mask, make_site, npy

from aimd.core.config import PlatformSettings
from aimd.platform import Platform
from aimd.platform.mask_store import mask_npy
from aimd.platform.models import Task

pytestmark = pytest.mark.integration

SAVES = 1000
TASKS = 20


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data: Path, db: str | None, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "aimd.cli.main", "platform", "serve", "--data", str(data), "--port", str(port)]
    if db:
        cmd += ["--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")


def _mask(i: int) -> np.ndarray:
    m = cube_mask()
    flat = m.reshape(-1)
    flat[i % flat.size] = 5 if flat[i % flat.size] == 1 else 1  # a different mask for every save
    return m


def test_acknowledged_saves_survive_kill_9(tmp_path: Path, database_url: str) -> None:
    db = None if database_url.startswith("sqlite") else database_url
    data = tmp_path / "data"
    site = make_site(data, db if db else f"sqlite:///{data / 'platform.db'}")
    project = site.project(readers=2)
    for k in range(TASKS // 2):
        site.case(project, key=f"c{k}", seed=k)
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    tasks = {u: [t["id"] for t in site.tasks(u)] for u in ("ann1", "ann2")}
    site.platform.close()
    port = _port()
    proc = _serve(data, db, port)
    base = f"http://127.0.0.1:{port}"
    tokens = {}
    for user in tasks:
        r = httpx.post(f"{base}/api/v1/auth/login", json={"username": user, "password": "correct horse 42 battery"})
        tokens[user] = r.json()["token"]
    acked: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()
    per_task = SAVES // TASKS

    def worker(user: str, task: int, offset: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[user]}", "Content-Type": "application/octet-stream"}
        with httpx.Client(base_url=base, timeout=30) as client:
            version = 0
            for i in range(per_task):
                body = npy(_mask(offset + i))
                try:
                    r = client.put(
                        f"/api/v1/tasks/{task}/draft", content=body, headers={**headers, "If-Match": f'"{version}"'}
                    )
                except httpx.HTTPError:
                    return  # the server died: this save was never acknowledged
                if r.status_code != 200:
                    return
                version = r.json()["draft_version"]
                with lock:
                    acked.append((task, version, body))

    threads = [
        threading.Thread(target=worker, args=(u, t, n * per_task))
        for n, (u, t) in enumerate((u, t) for u in tasks for t in tasks[u])
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < SAVES // 2 and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for t in threads:
        t.join()
    assert len(acked) >= SAVES // 4, f"only {len(acked)} saves acknowledged before the kill"
    assert len(acked) < SAVES, "the server was killed after all saves: the test proved nothing"
    restarted = Platform.open(data, database_url=db, settings=PlatformSettings())
    try:
        saves = {
            (int(e["subject"].split(":")[1]), e["detail"]["version"]): e["detail"]["mask_sha256"]
            for e in restarted.audit.entries(action="save")
        }
        assert restarted.audit.verify() is None
        with restarted.sessions() as s:
            for task, version, body in acked:
                row = s.get(Task, task)
                assert row.draft_version >= version
                sha = saves[(task, version)]
                assert mask_npy(restarted.blobs, sha) == body  # byte-identical, assembled from its slabs
                if row.draft_version == version:
                    assert row.draft_sha256 == sha
    finally:
        restarted.close()
