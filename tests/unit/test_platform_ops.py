"""Platform operations: CLI init/user/backup/restore drill, the route × role matrix, bind safety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from platform_support import ROLES, cube_mask, make_site
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.config import PlatformSettings
from aimd.core.errors import ConfigError, IntegrityError, InvalidInputError
from aimd.platform import Platform
from aimd.platform.backup import backup, restore
from aimd.platform.rbac import MATRIX, Permission, Role
from aimd.platform.settings import check_bind

runner = CliRunner()


def test_cli_init_user_commands_and_audit_verify(tmp_path: Path) -> None:
    data = tmp_path / "pf"
    r = runner.invoke(app, ["platform", "init", "--data", str(data), "--json"])
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    assert shown["role"] == "admin" and shown["totp_secret"] and len(shown["password"]) >= 12
    assert runner.invoke(app, ["platform", "init", "--data", str(data)]).exit_code != 0
    r = runner.invoke(app, ["platform", "user", "add", "ann1", "--role", "annotator", "--data", str(data), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["totp_secret"] is None
    r = runner.invoke(app, ["platform", "user", "role", "ann1", "reviewer", "--data", str(data), "--json"])
    assert json.loads(r.stdout)["role"] == "reviewer"
    r = runner.invoke(app, ["platform", "user", "disable", "ann1", "--data", str(data), "--json"])
    assert json.loads(r.stdout)["disabled"] is True
    r = runner.invoke(app, ["platform", "user", "role", "ann1", "boss", "--data", str(data)])
    assert isinstance(r.exception, InvalidInputError)
    r = runner.invoke(app, ["audit", "verify", str(data), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["entries"] >= 4


def test_non_loopback_bind_needs_tls(tmp_path: Path) -> None:
    check_bind(PlatformSettings(host="127.0.0.1"))
    with pytest.raises(ConfigError, match="without TLS"):
        check_bind(PlatformSettings(host="0.0.0.0"))
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    check_bind(PlatformSettings(host="0.0.0.0", tls_cert=cert, tls_key=key))
    r = runner.invoke(app, ["platform", "serve", "--data", str(tmp_path / "pf"), "--host", "0.0.0.0"])
    assert isinstance(r.exception, ConfigError)


def test_backup_restore_drill(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> None:
    site = make_site(tmp_path / "data", database_url)
    project, user, task = site.one_task()
    site.save(user, task["id"], cube_mask())
    assert site.submit(user, task["id"]).status_code == 200
    manifest = backup(site.platform, tmp_path / "bk")
    assert manifest["audit"]["entries"] == len(site.platform.audit) and manifest["files"]
    target_db = None
    if database_url.startswith("postgresql"):
        target_db = request.getfixturevalue("postgres_server").create_database()
    out = restore(tmp_path / "bk", tmp_path / "restored", database_url=target_db)
    assert out["audit_first_bad"] is None and out["blobs_damaged"] == []
    restored = Platform.open(tmp_path / "restored", database_url=target_db, settings=PlatformSettings())
    try:
        from aimd.platform.mask_store import mask_npy
        from aimd.platform.models import Task

        with restored.sessions() as db, site.platform.sessions() as old:
            t_new, t_old = db.get(Task, task["id"]), old.get(Task, task["id"])
            assert t_new.status == "submitted" and t_new.draft_sha256 == t_old.draft_sha256
            assert mask_npy(restored.blobs, t_new.draft_sha256) == mask_npy(site.platform.blobs, t_old.draft_sha256)
        assert restored.audit.head() == site.platform.audit.head()
    finally:
        restored.close()
        site.platform.close()
    with pytest.raises(InvalidInputError, match="not empty"):
        restore(tmp_path / "bk", tmp_path / "restored", database_url=target_db)
    blob = next((tmp_path / "bk" / "blobs").rglob("*.z"))
    blob.write_bytes(blob.read_bytes()[:-3] + b"xyz")
    with pytest.raises(IntegrityError, match="changed"):
        restore(tmp_path / "bk", tmp_path / "restored2")
    assert not (tmp_path / "restored2").exists()


# --- every route × every role: no unauthorised success ----------------------------------------------
ROUTES = [
    ("GET", "/api/v1/users", None, Permission.USER_MANAGE),
    ("POST", "/api/v1/users", {"username": "zz", "role": "annotator"}, Permission.USER_MANAGE),
    ("PATCH", "/api/v1/users/ann2", {"clearance": "internal"}, Permission.USER_MANAGE),
    ("POST", "/api/v1/projects", "project", Permission.PROJECT_CREATE),
    ("GET", "/api/v1/projects", None, Permission.PROJECT_READ),
    ("POST", "/api/v1/projects/{p}/cases", "case", Permission.CASE_IMPORT),
    ("POST", "/api/v1/projects/{p}/distribute", {}, Permission.TASK_DISTRIBUTE),
    ("GET", "/api/v1/projects/{p}/progress", None, Permission.PROGRESS_READ),
    ("POST", "/api/v1/projects/{p}/qc/sample", {"seed": 0}, Permission.QC_SAMPLE),
    ("POST", "/api/v1/projects/{p}/change-requests", {"case_id": 1, "reason": "x"}, Permission.CHANGE_REQUEST),
    ("POST", "/api/v1/change-requests/999/decide", {"approve": True}, Permission.CHANGE_DECIDE),
    ("POST", "/api/v1/projects/{p}/export", None, Permission.EXPORT),
    (
        "POST",
        "/api/v1/models",
        {"name": "m", "version": "1", "path": "/nonexistent", "label_values": {}},
        Permission.MODEL_REGISTER,
    ),
    ("GET", "/api/v1/cases/1/submissions", None, Permission.DIFF_READ),
    ("GET", "/api/v1/diff?a=1&b=1", None, Permission.DIFF_READ),
    ("GET", "/api/v1/audit", None, Permission.AUDIT_READ),
    ("GET", "/api/v1/audit/verify", None, Permission.AUDIT_READ),
    ("POST", "/api/v1/tasks/{t}/review", {"outcome": "accept"}, Permission.TASK_REVIEW),
    ("POST", "/api/v1/tasks/{t}/qc-decision", {"outcome": "pass"}, Permission.QC_SAMPLE),
    ("POST", "/api/v1/tasks/{t}/prelabel", {"model_id": 999}, Permission.PRELABEL),
    ("POST", "/api/v1/projects/{p}/freeze", None, Permission.PROJECT_FREEZE),
    ("DELETE", "/api/v1/projects/{p}?reason=r", None, Permission.PROJECT_DELETE),
    ("GET", "/api/v1/projects/{p}/members", None, Permission.PROJECT_MEMBERS),
    ("POST", "/api/v1/projects/{p}/members", {"usernames": ["qc"]}, Permission.PROJECT_MEMBERS),
    ("DELETE", "/api/v1/projects/{p}/members/qc", None, Permission.PROJECT_MEMBERS),
    ("POST", "/api/v1/audit/archive", None, Permission.AUDIT_ARCHIVE),
]


def test_route_role_matrix_has_no_unauthorised_success(tmp_path: Path) -> None:
    from platform_support import TASK_DEFINITION, nifti_b64

    site = make_site(tmp_path / "data", None)
    project = site.project(readers=1)
    site.case(project)
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    owner = "ann1" if site.tasks("ann1") else "ann2"
    (task,) = site.tasks(owner)
    bodies = {
        "project": lambda: {
            "name": f"p{np.random.randint(1e9)}",
            "task_definition": TASK_DEFINITION,
            "label_map": {"1": "LUNG"},
        },
        "case": lambda: {"case_key": f"c{np.random.randint(1e9)}", "image_nifti_b64": nifti_b64()},
    }
    unauthorised_successes, checked = [], 0
    for method, path, body, perm in ROUTES:
        for user, role in ROLES.items():
            if perm in MATRIX[Role(role)]:
                continue
            url = path.format(p=project, t=task["id"])
            payload = bodies[body]() if isinstance(body, str) else body
            r = site.client.request(method, url, json=payload, headers=site.as_(user))
            checked += 1
            if r.status_code < 400 or r.status_code not in (401, 403, 404):
                unauthorised_successes.append((method, path, user, r.status_code))
    # task routes of someone else's task, for the roles that hold the permission
    for user in ROLES:
        if user == owner:
            continue
        for method, url, payload in (
            ("PUT", f"/api/v1/tasks/{task['id']}/draft", None),
            ("POST", f"/api/v1/tasks/{task['id']}/submit", {}),
            ("GET", f"/api/v1/tasks/{task['id']}/image", None),
        ):
            if user == "admin" and method == "GET":
                continue
            headers = {**site.as_(user), "If-Match": '"0"', "Idempotency-Key": "x"}
            r = site.client.request(method, url, json=payload, headers=headers)
            checked += 1
            if r.status_code < 400 or r.status_code not in (401, 403, 404, 409):
                unauthorised_successes.append((method, url, user, r.status_code))
    for method, path, _, _ in ROUTES:
        r = site.client.request(method, path.format(p=project, t=task["id"]))
        checked += 1
        if r.status_code != 401:
            unauthorised_successes.append((method, path, "anonymous", r.status_code))
    site.platform.close()
    assert checked > 100
    assert unauthorised_successes == []


def test_simultaneous_logins_queue_on_the_bounded_hashing_pool(tmp_path: Path, monkeypatch) -> None:
    import os
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from platform_support import PASSWORD

    from aimd.platform import auth

    site = make_site(tmp_path / "data", None)
    hasher, lock, state = auth._HASHER, threading.Lock(), {"now": 0, "max": 0, "threads": set()}

    class Counting:
        def verify(self, stored: str, password: str) -> bool:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
                state["threads"].add(threading.current_thread().name)
            try:
                threading.Event().wait(0.05)
                return hasher.verify(stored, password)
            finally:
                with lock:
                    state["now"] -= 1

    monkeypatch.setattr(auth, "_HASHER", Counting())
    users = ["ann1", "ann2", "intake"] * 6  # roles without TOTP
    with ThreadPoolExecutor(len(users)) as pool:
        codes = list(
            pool.map(
                lambda u: (
                    site.client.post("/api/v1/auth/login", json={"username": u, "password": PASSWORD}).status_code
                ),
                users,
            )
        )
    bad = site.client.post("/api/v1/auth/login", json={"username": "ann1", "password": "wrong 1234567"})
    site.platform.close()
    assert codes == [200] * len(users) and bad.status_code == 401
    assert 1 <= state["max"] <= (os.cpu_count() or 1)
    assert all(name.startswith("argon2") for name in state["threads"])
