"""A study import interrupted by ``kill -9`` of `aimd platform serve` (001 §10.2.3): the import row is left
``running`` with no case stored (the case, its series and ``done`` are one transaction); the restarted
server queues it again from the archive still on disk and it ends ``done`` exactly once — one case, one
``import.study`` and one ``import.done`` in an audit chain that verifies — and the archive is deleted. A
SIGTERM while an import runs stops the server as promptly: the next start runs the import again. On SQLite
and on a real PostgreSQL (started by the tests)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from workspace_support import Served, serve_platform, start_serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from platform_support import TASK_DEFINITION
from study_support import deidentified_study, zip_folder

pytestmark = pytest.mark.integration


def _wait(api, location: str, until: tuple[str, ...], timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(location).json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"import not {until} in {timeout} s: {job}")


def _stored(data: Path, db: str | None) -> dict:
    from aimd.platform import Platform
    from aimd.platform.models import Case, StudyImportJob

    platform = Platform.open(data, database_url=db, migrate=False)
    try:
        with platform.sessions() as db:
            jobs = [(j.status, j.attempts) for j in db.scalars(sa.select(StudyImportJob).order_by(StudyImportJob.id))]
            cases = db.scalar(sa.select(sa.func.count()).select_from(Case))
        actions = [e["action"] for e in platform.audit.entries()]
        return {"jobs": jobs, "cases": cases, "actions": actions, "chain": platform.audit.verify()}
    finally:
        platform.close()


def test_an_import_killed_mid_way_is_run_again_after_restart_and_done_once(tmp_path: Path, database_url: str) -> None:
    db = None if database_url.startswith("sqlite") else database_url
    study = deidentified_study(tmp_path / "study")
    data = zip_folder(study, only=("t1", "coarse"))
    with serve_platform(tmp_path / "srv", {"intake": "intake", "admin": "admin"}, db) as served:
        admin = served.api("admin")
        body = {"name": "brain", "task_definition": TASK_DEFINITION, "label_map": {"1": "LUNG"}, "readers": 1}
        project = admin.post("/api/v1/projects", json=body).json()["id"]
        api = served.api("intake")
        r = api.post(
            f"/api/v1/projects/{project}/studies",
            files={"file": ("study.zip", data, "application/zip")},
            data={"case_key": "mr-restart"},
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        _wait(api, location, ("running",))
        time.sleep(0.5)  # mid-way through reading and registering the series
        os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait()
        killed = _stored(served.data, db)
        assert killed["jobs"] == [("running", 1)] and killed["cases"] == 0, killed  # nothing half-written
        assert len(list((served.data / "incoming").glob("*.zip"))) == 1  # the archive waits on disk
        proc, url, log = start_serve(tmp_path / "srv", served.data, db)
        try:
            again = Served(url=url, data=served.data, process=proc, secrets=served.secrets, tokens=served.tokens)
            done = _wait(again.api("intake"), location, ("done", "failed"))
            # a SIGTERM while an import runs stops the server at once: the import is left to the next start
            r = again.api("intake").post(
                f"/api/v1/projects/{project}/studies",
                files={"file": ("study.zip", data, "application/zip")},
                data={"case_key": "mr-term"},
            )
            _wait(again.api("intake"), r.headers["location"], ("running",))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
            log.close()
        stopped = _stored(served.data, db)
        assert stopped["jobs"] == [("done", 2), ("running", 1)] and stopped["cases"] == 1, stopped
        proc, url, log = start_serve(tmp_path / "srv", served.data, db)
        try:
            third = Served(url=url, data=served.data, process=proc, secrets=served.secrets, tokens=served.tokens)
            term = _wait(third.api("intake"), r.headers["location"], ("done", "failed"))
        finally:
            proc.terminate()
            proc.wait(timeout=120)
            log.close()
    assert term["status"] == "done" and term["attempts"] == 2, term
    assert done["status"] == "done" and done["attempts"] == 2, done
    assert done["result"]["case"]["case_key"] == "mr-restart" and len(done["result"]["series"]) == 2
    after = _stored(served.data, db)
    assert after["cases"] == 2 and after["jobs"] == [("done", 2), ("done", 2)] and after["chain"] is None, after
    actions = after["actions"]
    assert actions.count("import.queued") == 2 and actions.count("import.requeued") == 2
    assert actions.count("import.study") == 2 and actions.count("import.done") == 2
    assert list((served.data / "incoming").iterdir()) == []
