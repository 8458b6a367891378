"""DICOM study import as a background job (001 §10.1.1, §10.2.2–§10.2.4): the upload is streamed to a file
and answered 202 with an import record; a worker imports it; the record ends done with the result or
failed with the refusal; a second submission of the case while one is under way is 409; an upload over
the cap is 413 while streaming; the archive is deleted when the import ends; the audit log has it all."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from platform_support import make_site
from study_support import deidentified_study, zip_folder
from test_platform_study_import import _post, _stored, finished

from aimd.platform.api import routes_studies
from aimd.platform.series.study_jobs import INCOMING


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deidentified_study(tmp_path_factory.mktemp("jobs-study"))


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _incoming(site) -> list[str]:
    folder = site.platform.data_dir / INCOMING
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _audit(site, action: str) -> list[dict]:
    r = site.client.get("/api/v1/audit", params={"action": action}, headers=site.as_("admin"))
    assert r.status_code == 200, r.text
    return r.json()


def test_an_upload_is_accepted_queued_and_ends_done_with_the_result(site, study: Path) -> None:
    project = site.project(readers=1)
    data = zip_folder(study, only=("t1",))
    r = _post(site, project, data, case_key="mr-1")
    assert r.status_code == 202, r.text
    first = r.json()
    assert first["status"] in ("queued", "running") and first["result"] is None and first["error"] is None
    assert first["archive_sha256"] == hashlib.sha256(data).hexdigest() and first["bytes"] == len(data)
    assert first["case_key"] == "mr-1" and first["created_at"] and r.headers["location"].endswith(f"/{first['id']}")
    done = finished(site, r.headers["location"])
    assert done["status"] == "done" and done["attempts"] == 1 and done["started_at"] and done["finished_at"]
    assert done["result"]["case"]["case_key"] == "mr-1" and [s["slices"] for s in done["result"]["series"]] == [20]
    listed = site.client.get(f"/api/v1/projects/{project}/imports", headers=site.as_("intake")).json()
    assert [i["id"] for i in listed] == [first["id"]] and listed[0]["status"] == "done"
    assert _stored(site) == (1, 0) and _incoming(site) == []  # the archive is gone once imported
    (queued,) = _audit(site, "import.queued")
    (ok,) = _audit(site, "import.done")
    assert queued["subject"] == ok["subject"] == f"import:{first['id']}"
    assert queued["detail"]["archive_sha256"] == first["archive_sha256"]
    assert ok["detail"]["case"] == done["result"]["case"]["id"] and _audit(site, "import.study")
    # an annotator may not see imports
    assert site.client.get(r.headers["location"], headers=site.as_("ann1")).status_code == 403
    assert site.client.get("/api/v1/imports/999", headers=site.as_("intake")).status_code == 404


def test_a_failed_import_carries_the_refusal_and_is_audited(site, study: Path) -> None:
    project = site.project(readers=1)
    data = zip_folder(study, only=("t1",), extra={"t1/notes.txt": b"to do"})
    r = _post(site, project, data)
    assert r.status_code == 202, r.text
    failed = finished(site, r.headers["location"])
    err = failed["error"]
    assert failed["status"] == "failed" and failed["result"] is None
    assert err["status"] == 422 and err["where"] == "t1/notes.txt" and "not a DICOM" in err["message"] and err["hint"]
    (audited,) = _audit(site, "import.failed")
    assert audited["detail"]["error"]["where"] == "t1/notes.txt"
    assert _stored(site) == (0, 0) and _incoming(site) == []
    again = _post(site, project, zip_folder(study, only=("t1",)))  # a failed import may be sent again
    assert again.status_code == 202 and finished(site, again.headers["location"])["status"] == "done"


@pytest.fixture
def held(site) -> Iterator[threading.Event]:
    """The import worker kept busy, so imports stay queued until the event is set."""
    release = threading.Event()
    site.client.app.state.imports._pool.submit(release.wait, 60)
    yield release
    release.set()


def test_the_same_case_twice_while_one_is_under_way_is_409_and_a_key_replays(site, study: Path, held) -> None:
    project = site.project(readers=1)
    data = zip_folder(study, only=("t1",))
    key = {"Idempotency-Key": "upload-1"}
    first = _post(site, project, data, case_key="dup", headers=key)
    assert first.status_code == 202 and first.json()["status"] == "queued", first.text
    second = _post(site, project, data, case_key="dup")
    assert second.status_code == 409 and second.json()["where"] == "case_key", second.text
    assert f"import {first.json()['id']}" in second.json()["message"] and second.json()["hint"]
    replay = _post(site, project, data, case_key="dup", headers=key)
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(_incoming(site)) == 1  # the refused and the replayed uploads were not kept
    held.set()
    assert finished(site, first.headers["location"])["status"] == "done"
    after = _post(site, project, data, case_key="dup")
    assert after.status_code == 409 and "already imported" in after.json()["message"]
    assert len(_audit(site, "import.queued")) == 1 and _stored(site) == (1, 0)


def test_an_upload_over_the_cap_is_413_while_streaming_and_nothing_is_kept(
    site, study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = site.project(readers=1)
    data = zip_folder(study, only=("t1",))
    monkeypatch.setattr(routes_studies, "MAX_UPLOAD_BYTES", len(data) // 2)
    declared = _post(site, project, data)  # Content-Length says it at once
    assert declared.status_code == 413 and declared.json()["where"] == "file", declared.text
    boundary = "aimd-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="case_key"\r\n\r\nbig\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.zip"\r\n'
        "Content-Type: application/zip\r\n\r\n"
    ).encode()

    def chunked() -> Iterator[bytes]:  # no Content-Length: only counting the bytes can stop it
        yield head
        for k in range(0, len(data), 1 << 16):
            yield data[k : k + (1 << 16)]
        yield f"\r\n--{boundary}--\r\n".encode()

    r = site.client.post(
        f"/api/v1/projects/{project}/studies",
        content=chunked(),
        headers={**site.as_("intake"), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 413 and "larger than" in r.json()["message"] and r.json()["hint"], r.text
    assert _incoming(site) == [] and _stored(site) == (0, 0) and _audit(site, "import.queued") == []


def test_refusals_before_the_upload_is_kept(site, study: Path, caplog) -> None:
    project = site.project(readers=1)
    no_file = site.client.post(
        f"/api/v1/projects/{project}/studies",
        data={"case_key": "x"},
        files={"other": ("a", b"b")},
        headers=site.as_("intake"),
    )
    assert no_file.status_code == 422 and no_file.json()["where"] == "file", no_file.text
    no_key = site.client.post(
        f"/api/v1/projects/{project}/studies",
        files={"file": ("s.zip", zip_folder(study, only=("t1",)))},
        headers=site.as_("intake"),
    )
    assert no_key.status_code == 422 and no_key.json()["where"] == "case_key", no_key.text
    not_form = site.client.post(f"/api/v1/projects/{project}/studies", content=b"PK", headers=site.as_("intake"))
    assert not_form.status_code == 422 and "multipart" in not_form.json()["message"]
    with caplog.at_level(logging.DEBUG):
        torn = site.client.post(  # its first boundary is not the declared one
            f"/api/v1/projects/{project}/studies",
            content=b'--aimd-x\r\nContent-Disposition: form-data; name="file"\r\n\r\nPK\r\n--aimd-x--\r\n',
            headers={**site.as_("intake"), "Content-Type": "multipart/form-data; boundary=aimd-b"},
        )
    assert torn.status_code == 400 and "cannot be read" in torn.json()["message"], torn.text
    # the refusal is the answer; the parser's own log line would only repeat it in the server log
    assert not [r for r in caplog.records if r.name.startswith("python_multipart")], caplog.records
    hidden = _post(site, 999, zip_folder(study, only=("t1",)))
    assert hidden.status_code == 404
    assert _incoming(site) == [] and _audit(site, "import.queued") == []


def test_the_migration_creates_the_table_the_model_describes(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from aimd.platform.models import Base
    from aimd.store import make_engine, upgrade

    engine = make_engine(tmp_path / "m.db")
    upgrade(engine, "platform")
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        columns = {c["name"] for c in sa.inspect(conn).get_columns("pf_study_import")}
    assert [d for d in diff if "pf_study_import" in str(d)] == []
    assert {"status", "archive_sha256", "bytes", "result", "error", "active_case", "attempts"} <= columns
    engine.dispose()


def test_start_up_requeues_an_interrupted_import_and_fails_it_after_the_last_attempt(
    site, study: Path, held, tmp_path: Path
) -> None:
    import os
    import time

    from aimd.platform.backup import backup
    from aimd.platform.models import StudyImportJob
    from aimd.platform.projects import collect_blobs
    from aimd.platform.series.study_jobs import MAX_ATTEMPTS, STALE_PART_SECONDS, recover

    project = site.project(readers=1)
    job_id = _post(site, project, zip_folder(study, only=("t1",))).json()["id"]
    (archive,) = _incoming(site)
    folder = site.platform.data_dir / INCOMING
    (folder / ".upload-old.tmp").write_bytes(b"PK")  # an upload cut off by a crash long ago
    os.utime(folder / ".upload-old.tmp", (time.time() - 2 * STALE_PART_SECONDS,) * 2)
    (folder / ".upload-new.tmp").write_bytes(b"PK")  # one still arriving
    # backup and blob collection leave the waiting archive alone and do not copy it
    manifest = backup(site.platform, tmp_path / "backup")
    assert not [f for f in manifest["files"] if INCOMING in str(f)]
    with site.platform.sessions() as db:
        collect_blobs(db, site.platform.audit, site.platform.blobs, "test", grace_seconds=0)
        db.commit()
    assert archive in _incoming(site)

    def interrupted(attempts: int) -> None:  # the state a process killed while importing leaves
        with site.platform.sessions() as db:
            db.execute(
                sa.update(StudyImportJob).where(StudyImportJob.id == job_id).values(status="running", attempts=attempts)
            )
            db.commit()

    interrupted(1)
    out = recover(site.platform)
    assert out == {"queued": [job_id], "failed": [], "requeued": [job_id]}
    record = site.client.get(f"/api/v1/imports/{job_id}", headers=site.as_("intake")).json()
    assert record["status"] == "queued" and record["attempts"] == 1
    assert _incoming(site) == sorted([archive, ".upload-new.tmp"])
    interrupted(MAX_ATTEMPTS)
    assert recover(site.platform) == {"queued": [], "failed": [job_id], "requeued": []}
    record = site.client.get(f"/api/v1/imports/{job_id}", headers=site.as_("intake")).json()
    assert record["status"] == "failed" and record["error"]["status"] == 500 and record["error"]["hint"]
    assert f"each of the {MAX_ATTEMPTS} attempts" in record["error"]["message"]
    assert _incoming(site) == [".upload-new.tmp"] and _stored(site) == (0, 0)
    assert [e["subject"] for e in _audit(site, "import.requeued")] == [f"import:{job_id}"]
    assert _audit(site, "import.failed")[0]["detail"]["error"]["error"] == "InterruptedError"
    # the case may be sent again once the interrupted import failed
    assert _post(site, project, zip_folder(study, only=("t1",))).status_code == 202


def test_a_duplicate_case_key_sent_before_the_file_is_refused_before_the_file_is_taken(site, study: Path) -> None:
    project = site.project(readers=1)
    data = zip_folder(study, only=("t1",))
    first = _post(site, project, data, case_key="early")
    assert finished(site, first.headers["location"])["status"] == "done"
    boundary = "aimd-early"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="case_key"\r\n\r\nearly\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.zip"\r\n\r\n'
    ).encode()
    chunks = [head] + [data[k : k + (1 << 14)] for k in range(0, len(data), 1 << 14)]
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    taken: list[int] = []
    answer: list[dict] = []

    async def receive() -> dict:  # the body as a server hands it over: one chunk when the app asks
        taken.append(1)
        k = len(taken) - 1
        return {"type": "http.request", "body": chunks[k], "more_body": k + 1 < len(chunks)}

    async def send(message: dict) -> None:
        answer.append(message)

    auth = site.as_("intake")["Authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/api/v1/projects/{project}/studies",
        "raw_path": f"/api/v1/projects/{project}/studies".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", auth),
            (b"content-type", f"multipart/form-data; boundary={boundary}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    asyncio.run(site.client.app(scope, receive, send))
    assert answer[0]["status"] == 409 and b"already imported" in answer[1]["body"], answer
    assert len(taken) <= 3 < len(chunks), (len(taken), len(chunks))  # the file's bytes were never taken
    assert _incoming(site) == []
