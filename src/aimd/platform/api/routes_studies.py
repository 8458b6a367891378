"""Routes of the DICOM study import (001 §6.4.1, §10.1.1, §10.2.2–§10.2.4).

``POST /api/v1/projects/{p}/studies`` takes a zip archive of a study's DICOM files (multipart ``file``)
with the case key, optional primary series, report text and clinical fields. The body is streamed to a
file in the data folder's ``incoming/`` (counted, SHA-256 hashed, 413 above :data:`MAX_UPLOAD_BYTES`),
the archive's central directory is checked (not a zip, path traversal, links, encryption, zip bombs: 4xx
at once, nothing kept), and the import is queued: ``202 Accepted`` with the import record and a
``Location``. A worker thread of the serving process imports it
(:mod:`aimd.platform.series.study_jobs`); ``GET /api/v1/imports/{id}`` shows ``queued``, ``running``,
``done`` with the result, or ``failed`` with the refusal (its HTTP status and error body).
"""

import json
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from aimd.platform.api import schemas
from aimd.platform.api.common import Deps, Id, _error_body, _status
from aimd.platform.api.upload import receive_file
from aimd.platform.rbac import Permission
from aimd.platform.series.study import StudyError, StudyImport
from aimd.platform.series.study_jobs import (
    ImportWorker,
    check_submission,
    get_import,
    import_out,
    incoming,
    list_imports,
    replayed,
    submit_import,
)
from aimd.platform.series.unpack import check_zip

__all__ = ["MAX_UPLOAD_BYTES", "ImportOut", "StudyOut", "describe_error", "register"]

MAX_UPLOAD_BYTES = 2 << 30
"""Largest study archive the route accepts (413 above)."""


class StudyOut(BaseModel):
    """The imported case, the primary series and why, and every series with its registration."""

    case: dict[str, Any]
    primary: str
    primary_rule: str
    series: list[dict[str, Any]]


class ImportErrorOut(schemas.ErrorOut):
    """Why an import failed: the refusal's error body with the HTTP status it would have had."""

    status: int


class ImportOut(BaseModel):
    """A study import: queued, running, done (with the result) or failed (with the error)."""

    id: int
    project: int
    status: str = Field(description="queued | running | done | failed")
    case_key: str
    archive_sha256: str = Field(description="SHA-256 of the uploaded archive, computed while it was received")
    bytes: int
    attempts: int = Field(description="starts of the import (a restart re-runs an interrupted one)")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    result: StudyOut | None
    error: ImportErrorOut | None


_FORM = {
    "type": "object",
    "required": ["file", "case_key"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "zip archive of the study's DICOM files"},
        "case_key": {"type": "string", "minLength": 1, "maxLength": 200},
        "primary_series_uid": {"type": "string", "maxLength": 64},
        "report_text": {"type": "string", "maxLength": 100_000},
        "fields": {"type": "string", "maxLength": 100_000, "description": "clinical fields, a JSON object"},
    },
}
STUDY_FORM = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM}}}}


def describe_error(err: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and error body a failed import carries (as the synchronous answer had)."""
    from aimd.core.errors import AimdError

    if isinstance(err, AimdError):
        return _status(err), _error_body(err)
    return 500, {
        "error": "InternalError",
        "message": f"the import stopped on an unexpected error ({type(err).__name__}: {err})"[:2000],
        "where": "import",
        "hint": "report it with the server log; the study was not stored",
    }


def _fields(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise StudyError(
            f"fields is not JSON ({err.msg})", where="fields", hint='send a JSON object, e.g. {"age": 60}'
        ) from None
    if not isinstance(value, dict):
        raise StudyError("fields is not a JSON object", where="fields", hint='send a JSON object, e.g. {"age": 60}')
    return value


def _spec(form: dict[str, str]) -> StudyImport:
    if not form.get("case_key"):
        raise StudyError("the form has no case_key", where="case_key", hint="send the new case's key")
    try:
        return StudyImport(
            case_key=form["case_key"],
            primary_series_uid=form.get("primary_series_uid") or None,
            report_text=form.get("report_text", ""),
            fields=_fields(form.get("fields", "")),
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "study"
        raise StudyError(str(first["msg"]), where=where, hint="check the form fields") from None


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, need = d.platform, d.DB, d.need
    worker: ImportWorker = app.state.imports

    @app.post(
        "/api/v1/projects/{project_id}/studies",
        tags=["cases"],
        status_code=202,
        response_model=ImportOut,
        responses=schemas.errors(400, 413),
        openapi_extra=STUDY_FORM,
    )
    async def import_dicom_study(
        project_id: Id,
        request: Request,
        user: need(Permission.CASE_IMPORT),
        idempotency_key: Annotated[
            str | None, Header(min_length=1, max_length=200, description="repeats return the first import")
        ] = None,
    ) -> JSONResponse:
        def known() -> dict[str, Any] | None:
            with platform.sessions() as db:
                done = replayed(db, user, idempotency_key)
                if done is None:
                    check_submission(db, user, project_id, None)  # visible and open, before any byte is taken
                return import_out(done) if done is not None else None

        earlier = await run_in_threadpool(known)
        if earlier is not None:
            headers = {"Location": f"/api/v1/imports/{earlier['id']}", "Idempotent-Replayed": "true"}
            return JSONResponse(earlier, status_code=202, headers=headers)

        async def early(form: dict[str, str]) -> None:
            if form.get("case_key"):

                def check() -> None:
                    with platform.sessions() as db:
                        check_submission(db, user, project_id, form["case_key"])

                await run_in_threadpool(check)

        upload = await receive_file(request, incoming(platform), MAX_UPLOAD_BYTES, before_file=early)
        try:
            spec = _spec(upload.fields)
            assert upload.path is not None
            await run_in_threadpool(check_zip, upload.path)

            def queue() -> dict[str, Any]:
                with platform.sessions() as db:
                    job = submit_import(
                        db,
                        platform,
                        user,
                        project_id,
                        spec,
                        upload.path,  # type: ignore[arg-type]
                        sha256=upload.sha256,
                        size=upload.size,
                        idempotency_key=idempotency_key,
                    )
                    db.commit()
                    return import_out(job)

            out = await run_in_threadpool(queue)
        except BaseException:
            upload.discard()
            raise
        worker.submit(out["id"])
        return JSONResponse(out, status_code=202, headers={"Location": f"/api/v1/imports/{out['id']}"})

    @app.get("/api/v1/imports/{import_id}", tags=["cases"], response_model=ImportOut)
    def get_study_import(import_id: Id, user: need(Permission.CASE_IMPORT), db: DB) -> dict[str, Any]:
        return import_out(get_import(db, user, import_id))

    @app.get("/api/v1/projects/{project_id}/imports", tags=["cases"], response_model=list[ImportOut])
    def list_study_imports(project_id: Id, user: need(Permission.CASE_IMPORT), db: DB) -> list[dict[str, Any]]:
        return [import_out(job) for job in list_imports(db, user, project_id)]
