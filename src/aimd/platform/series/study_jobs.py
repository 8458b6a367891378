"""DICOM study imports as persisted jobs (001 §10.1.1, §10.2.2, §10.2.3).

An uploaded study archive is kept as a file in the data folder's ``incoming/`` and a ``queued`` row of
:class:`~aimd.platform.models.StudyImportJob` is committed before the client is told (202). A worker
claims the row once (a conditional ``UPDATE ... WHERE status = 'queued'``), reads, checks and registers
the study outside any transaction (:func:`~aimd.platform.series.study.prepare_study`), then stores the
case, its series, the row's ``done`` state and the audit entries in **one** transaction: a crash before
that commit leaves no case and the row ``running``; after it, the case and ``done`` together.

At start-up (:func:`recover`) a row left ``running`` by a killed process is queued again — its archive is
still on disk and the import is all-or-nothing — up to :data:`MAX_ATTEMPTS` starts; after that it is
failed with the reason. The archive is deleted as soon as the import is done or failed.

Job states: ``queued`` → ``running`` → ``done`` | ``failed``. The audit log records ``import.queued``,
``import.study`` (with the case), ``import.done`` and ``import.failed``.

Example
-------
>>> STATES
('queued', 'running', 'done', 'failed')
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from aimd.core.errors import AimdError
from aimd.core.logging import get_logger
from aimd.platform.app_state import Platform
from aimd.platform.errors import ConflictError, IdentifiersFoundError, NotFoundError
from aimd.platform.models import Case, Project, StudyImportJob, User, utcnow
from aimd.platform.projects import get_project
from aimd.platform.series.intake import require_open
from aimd.platform.series.study import StudyImport, prepare_study, store_study

__all__ = [
    "INCOMING",
    "MAX_ATTEMPTS",
    "STATES",
    "ImportWorker",
    "get_import",
    "import_out",
    "list_imports",
    "recover",
    "run_import",
    "submit_import",
]

STATES = ("queued", "running", "done", "failed")
INCOMING = "incoming"
"""Folder of the data folder where uploaded archives wait for their import."""
MAX_ATTEMPTS = 3
"""Starts of one import (the first and the re-runs after restarts) before it is failed."""
STALE_PART_SECONDS = 3600.0
"""An unfinished upload (``*.tmp``) older than this is removed at start-up."""

Describe = Callable[[BaseException], tuple[int, dict[str, Any]]]
log = get_logger("aimd.platform.imports")


def incoming(platform: Platform) -> Path:
    """The folder of waiting archives (created)."""
    folder = platform.data_dir / INCOMING
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def import_out(job: StudyImportJob) -> dict[str, Any]:
    """The import as the API shows it."""

    def iso(t: Any) -> str | None:
        return t.isoformat() + "Z" if t is not None else None

    return {
        "id": job.id,
        "project": job.project_id,
        "status": job.status,
        "case_key": job.case_key,
        "archive_sha256": job.archive_sha256,
        "bytes": job.bytes,
        "attempts": job.attempts,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "finished_at": iso(job.finished_at),
        "result": job.result,
        "error": job.error,
    }


def _active(project_id: int, case_key: str) -> str:
    return f"{project_id}:{case_key}"


def _under_way(db: Session, project: Project, case_key: str) -> None:
    if db.scalar(sa.select(Case.id).where(Case.project_id == project.id, Case.case_key == case_key)):
        raise ConflictError(f"case {case_key!r} is already imported", where="case_key", hint="use a new case key")
    other = db.scalar(sa.select(StudyImportJob).where(StudyImportJob.active_case == _active(project.id, case_key)))
    if other is not None:
        raise ConflictError(
            f"case {case_key!r} is already being imported (import {other.id}, {other.status})",
            where="case_key",
            hint=f"wait for GET /api/v1/imports/{other.id} to finish; a failed import may be sent again",
        )


def replayed(db: Session, user: User, idempotency_key: str | None) -> StudyImportJob | None:
    """The import this user already submitted with ``idempotency_key``, if any."""
    if not idempotency_key:
        return None
    return db.scalar(
        sa.select(StudyImportJob).where(
            StudyImportJob.user_id == user.id, StudyImportJob.idempotency_key == idempotency_key
        )
    )


def check_submission(db: Session, user: User, project_id: int, case_key: str | None) -> Project:
    """The project, if a new import of ``case_key`` may be queued in it (visible, open, no such case,
    none under way; ``None``: the project only); raises the refusal otherwise."""
    project = get_project(db, user, project_id)
    require_open(project)
    if case_key is not None:
        _under_way(db, project, case_key)
    return project


def submit_import(
    db: Session,
    platform: Platform,
    user: User,
    project_id: int,
    spec: StudyImport,
    archive: Path,
    *,
    sha256: str,
    size: int,
    idempotency_key: str | None = None,
) -> StudyImportJob:
    """Queue the import of the checked archive file ``archive`` (in :func:`incoming`); the caller commits.
    Two submissions of one case racing each other: the unique ``active_case`` refuses the second (409)."""
    project = check_submission(db, user, project_id, spec.case_key)
    job = StudyImportJob(
        project_id=project.id,
        user_id=user.id,
        case_key=spec.case_key,
        active_case=_active(project.id, spec.case_key),
        idempotency_key=idempotency_key,
        status="queued",
        archive=archive.name,
        archive_sha256=sha256,
        bytes=size,
        spec=spec.model_dump(mode="json"),
    )
    db.add(job)
    try:
        db.flush()
    except DBIntegrityError:
        db.rollback()
        raise ConflictError(
            f"case {spec.case_key!r} is already being imported, or the Idempotency-Key was used",
            where="case_key",
            hint="wait for the import under way to finish",
        ) from None
    platform.audit.append(
        user.username,
        "import.queued",
        f"import:{job.id}",
        {"project": project.id, "case_key": spec.case_key, "archive_sha256": sha256, "bytes": size},
        connection=db,
    )
    return job


def get_import(db: Session, user: User, import_id: int) -> StudyImportJob:
    """The import if its project is visible to ``user`` (404 otherwise)."""
    job = db.get(StudyImportJob, import_id)
    if job is None:
        raise NotFoundError(f"no import {import_id}", where="import", hint="list /api/v1/projects/{id}/imports")
    get_project(db, user, job.project_id)
    return job


def list_imports(db: Session, user: User, project_id: int) -> list[StudyImportJob]:
    """The project's imports, newest first."""
    get_project(db, user, project_id)
    query = sa.select(StudyImportJob).where(StudyImportJob.project_id == project_id)
    return list(db.scalars(query.order_by(StudyImportJob.id.desc())))


def _claim(platform: Platform, job_id: int) -> bool:
    with platform.sessions() as db:
        n = db.execute(
            sa.update(StudyImportJob)
            .where(StudyImportJob.id == job_id, StudyImportJob.status == "queued")
            .values(status="running", attempts=StudyImportJob.attempts + 1, started_at=utcnow())
        ).rowcount
        db.commit()
    return n == 1


def _finish(
    db: Session, platform: Platform, job: StudyImportJob, actor: str, *, result: Any = None, error: Any = None
) -> None:
    job.status = "failed" if error is not None else "done"
    job.result, job.error, job.active_case, job.finished_at = result, error, None, utcnow()
    detail = {"case_key": job.case_key, "archive_sha256": job.archive_sha256}
    if error is not None:
        detail["error"] = error
    else:
        detail["case"] = result["case"]["id"]
    platform.audit.append(actor, f"import.{job.status}", f"import:{job.id}", detail, connection=db)


def _drop_archive(platform: Platform, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (incoming(platform) / name).unlink()


def run_import(platform: Platform, job_id: int, describe: Describe) -> str | None:
    """Run one queued import (at most once: claimed first); its final status, None when not claimed."""
    if not _claim(platform, job_id):
        return None
    with platform.sessions() as db:
        job = db.get(StudyImportJob, job_id)
        if job is None:  # its project was deleted meanwhile (the row with it); start-up drops the archive
            return None
        spec, name = StudyImport.model_validate(job.spec), job.archive
        project = db.get(Project, job.project_id)
        max_mi = project.registration_max_mi if project is not None else None
        db.commit()  # hold no lock while the study is read and registered
    try:
        archive = incoming(platform) / name
        if not archive.is_file():
            raise NotFoundError(
                "the uploaded archive is no longer on disk", where="archive", hint="upload the study again"
            )
        with prepare_study(spec, max_mi, archive=archive) as prepared, platform.sessions() as db:
            job = db.get(StudyImportJob, job_id)
            user, project = db.get(User, job.user_id), db.get(Project, job.project_id)
            if project is None:
                raise NotFoundError("the project was deleted", where="project", hint="import into another project")
            try:
                result = store_study(db, platform.audit, platform.blobs, user, project, spec, prepared)
            except IdentifiersFoundError as err:  # the refusal stays audited with the failed import
                _finish(db, platform, job, user.username, error=_error(describe, err))
                db.commit()
                return "failed"
            _finish(db, platform, job, user.username, result=result)
            db.commit()
        return "done"
    except Exception as err:  # an import never stays "running" because of an unexpected error
        if not isinstance(err, AimdError):
            log.exception("study import failed", import_id=job_id)
        with platform.sessions() as db:
            job = db.get(StudyImportJob, job_id)
            if job is not None:
                user = db.get(User, job.user_id)
                _finish(db, platform, job, user.username if user else "platform", error=_error(describe, err))
                db.commit()
        return "failed"
    finally:
        _drop_archive(platform, name)


def _error(describe: Describe, err: BaseException) -> dict[str, Any]:
    status, body = describe(err)
    return {"status": status, **body}


def recover(platform: Platform) -> dict[str, list[int]]:
    """At start-up: imports left running by a stopped process are queued again (up to
    :data:`MAX_ATTEMPTS` starts, then failed naming why); returns the ids to run and those failed.
    Unfinished uploads older than :data:`STALE_PART_SECONDS` and archives no waiting import names are
    removed."""
    requeued, failed = [], []
    with platform.sessions() as db:
        for job in db.scalars(sa.select(StudyImportJob).where(StudyImportJob.status == "running")):
            if job.attempts >= MAX_ATTEMPTS:
                error = {
                    "status": 500,
                    "error": "InterruptedError",
                    "message": f"the platform stopped during each of the {job.attempts} attempts of this import",
                    "where": "import",
                    "hint": "check the server's memory and logs, then upload the study again "
                    "(in parts if it is very large)",
                }
                _finish(db, platform, job, "platform", error=error)
                failed.append(job.id)
                continue
            job.status, job.started_at = "queued", None
            platform.audit.append(
                "platform", "import.requeued", f"import:{job.id}", {"attempts": job.attempts}, connection=db
            )
            requeued.append(job.id)
        waiting = db.execute(
            sa.select(StudyImportJob.id, StudyImportJob.archive).where(StudyImportJob.status == "queued")
        ).all()
        db.commit()
    keep = {archive for _, archive in waiting}
    now = time.time()
    for path in incoming(platform).iterdir():
        stale = path.name.endswith(".tmp") and now - path.stat().st_mtime > STALE_PART_SECONDS
        if stale or (not path.name.endswith(".tmp") and path.name not in keep):
            path.unlink(missing_ok=True)
    return {"queued": sorted(i for i, _ in waiting), "failed": failed, "requeued": requeued}


class ImportWorker:
    """Runs queued imports in at most ``workers`` threads of the serving process."""

    def __init__(self, platform: Platform, describe: Describe, workers: int = 1) -> None:
        self.platform, self.describe = platform, describe
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aimd-import")
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, job_id: int) -> None:
        """Schedule one import (after its row is committed)."""
        with self._lock:
            if not self._closed:
                self._pool.submit(run_import, self.platform, job_id, self.describe)

    def recover(self) -> dict[str, list[int]]:
        """Requeue what a stopped process left running and schedule every queued import."""
        out = recover(self.platform)
        if out["requeued"] or out["failed"]:
            log.warning("interrupted study imports", requeued=out["requeued"], failed=out["failed"])
        for job_id in out["queued"]:
            self.submit(job_id)
        return out

    def close(self) -> None:
        """Stop taking imports; one running finishes in its thread (or is re-run after a restart)."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
