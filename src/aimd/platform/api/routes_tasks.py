"""Routes of tasks: drafts with If-Match, idempotent submits, review, QC decisions, models and pre-labels."""

from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from aimd.platform import prelabels, projects, workflow
from aimd.platform.api import schemas
from aimd.platform.api.common import (
    MASK_HEADERS,
    MAX_ID,
    NPY_BODY,
    DecisionIn,
    Deps,
    Id,
    ModelIn,
    PrelabelIn,
    SubmitIn,
    _kinds,
    _task_out,
    blob_response,
    mask_response,
    save_draft_answer,
)
from aimd.platform.models import (
    Case,
    IdempotencyRecord,
    ModelRecord,
)
from aimd.platform.rbac import Permission

__all__ = ["register"]


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, Current, need = d.platform, d.DB, d.Current, d.need
    audit, blobs = platform.audit, platform.blobs

    @app.get("/api/v1/tasks", tags=["tasks"], response_model=list[schemas.TaskOut])
    def list_tasks(
        who: Current, db: DB, project: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, status: str | None = None
    ) -> list[dict]:
        return [_task_out(t) for t in workflow.visible_tasks(db, who[0], project_id=project, status=status)]

    @app.get("/api/v1/tasks/{task_id}", tags=["tasks"], response_model=schemas.TaskDetailOut)
    def get_task(task_id: Id, who: Current, db: DB) -> JSONResponse:
        task = workflow.get_task(db, who[0], task_id)
        case = db.get(Case, task.case_id)
        assert case is not None
        body = {
            **_task_out(task),
            "case_key": case.case_key,
            "image": case.image,
            "report_text": case.report_text,
            "fields": case.fields,
        }
        return JSONResponse(body, headers={"ETag": f'"{task.draft_version}"'})

    @app.get(
        "/api/v1/tasks/{task_id}/image",
        tags=["tasks"],
        response_class=Response,
        responses=schemas.binary("the case image (z, y, x)", {"X-Content-SHA256": "SHA-256 of the .npy bytes"}),
    )
    def task_image(task_id: Id, request: Request, who: Current, db: DB) -> Response:
        task = workflow.get_task(db, who[0], task_id)
        case = db.get(Case, task.case_id)
        assert case is not None
        db.commit()  # read the blob outside the database transaction
        return blob_response(request, blobs, case.image_sha256)

    @app.get(
        "/api/v1/tasks/{task_id}/draft",
        tags=["tasks"],
        response_class=Response,
        responses=schemas.binary(
            "the draft label mask",
            {
                "ETag": "the draft version",
                "X-Draft-Source": "manual or model@version",
                **MASK_HEADERS,
            },
        ),
    )
    def get_draft(task_id: Id, request: Request, who: Current, db: DB) -> Response:
        task = workflow.get_task(db, who[0], task_id)
        if task.draft_sha256 is None:
            raise projects.NotFoundError(
                f"task {task_id} has no draft yet", where="draft", hint='save one with PUT and If-Match: "0"'
            )
        db.commit()  # read the blob outside the database transaction
        headers = {"ETag": f'"{task.draft_version}"', "X-Draft-Source": task.draft_source or ""}
        return mask_response(request, blobs, task.draft_sha256, headers)

    @app.put(
        "/api/v1/tasks/{task_id}/draft",
        tags=["tasks"],
        response_model=schemas.DraftSavedOut,
        responses=schemas.errors(400, 413, 415, 428),
        openapi_extra=NPY_BODY,
    )
    async def put_draft(
        task_id: int,
        request: Request,
        user: need(Permission.TASK_ANNOTATE, Permission.TASK_ARBITRATE),
        if_match: Annotated[str | None, Header()] = None,
        content_encoding: Annotated[str | None, Header()] = None,
        x_content_sha256: Annotated[str | None, Header(description="SHA-256 of the .npy bytes sent")] = None,
    ) -> JSONResponse:
        return await save_draft_answer(
            platform, request, user, task_id, if_match, encoding=content_encoding, declared_sha256=x_content_sha256
        )

    @app.post("/api/v1/tasks/{task_id}/submit", tags=["tasks"], response_model=schemas.SubmitOut)
    def submit(
        task_id: int,
        user: need(Permission.TASK_ANNOTATE, Permission.TASK_ARBITRATE),
        db: DB,
        idempotency_key: Annotated[str, Header(min_length=1, max_length=200)],
        body: SubmitIn | None = None,
    ) -> JSONResponse:
        done = db.get(IdempotencyRecord, (user.id, idempotency_key))
        if done is not None:
            return JSONResponse(done.response, status_code=done.status, headers={"Idempotent-Replayed": "true"})
        task = workflow.get_task(db, user, task_id, kinds=_kinds(user))
        try:
            out = workflow.submit(
                db, audit, blobs, user, task, body.attributes if body else None, body.marks() if body else None
            )
        except workflow.QCFailedError:
            db.commit()  # the refusal is audited
            raise
        db.add(IdempotencyRecord(user_id=user.id, key=idempotency_key, status=200, response=out))
        try:
            db.commit()
        except DBIntegrityError:
            db.rollback()
            done = db.get(IdempotencyRecord, (user.id, idempotency_key))
            if done is None:
                raise
            return JSONResponse(done.response, status_code=done.status, headers={"Idempotent-Replayed": "true"})
        return JSONResponse(out)

    @app.post("/api/v1/tasks/{task_id}/review", tags=["tasks"], response_model=schemas.DecisionOut)
    def review(task_id: Id, body: DecisionIn, user: need(Permission.TASK_REVIEW), db: DB) -> dict[str, Any]:
        task = workflow.get_task(db, user, task_id, kinds=("review",))
        out = workflow.review(db, audit, user, task, body.outcome, body.reason)
        db.commit()
        return out

    @app.post("/api/v1/tasks/{task_id}/qc-decision", tags=["qc"], response_model=schemas.DecisionOut)
    def qc_decision(task_id: Id, body: DecisionIn, user: need(Permission.QC_SAMPLE), db: DB) -> dict[str, Any]:
        task = workflow.get_task(db, user, task_id, kinds=("qc_sample",))
        out = workflow.review(db, audit, user, task, body.outcome, body.reason)
        db.commit()
        return out

    @app.post("/api/v1/models", tags=["models"], status_code=201, response_model=schemas.ModelOut)
    def register_model(body: ModelIn, user: need(Permission.MODEL_REGISTER), db: DB) -> dict[str, Any]:
        rec = prelabels.register_model(
            db,
            audit,
            platform.settings,
            user,
            name=body.name,
            version=body.version,
            path=body.path,
            parameters=body.parameters,
            label_values=body.label_values,
            endpoint=body.endpoint,
            served_model=body.served_model,
            served_version=body.served_version,
        )
        db.commit()
        return {"id": rec.id, "name": rec.name, "version": rec.version, "file_sha256": rec.file_sha256}

    @app.post(
        "/api/v1/tasks/{task_id}/prelabel",
        tags=["models"],
        response_model=schemas.PrelabelOut,
        responses=schemas.errors(502),
    )
    def run_prelabel(task_id: Id, body: PrelabelIn, user: need(Permission.PRELABEL), db: DB) -> JSONResponse:
        task = workflow.get_task(db, user, task_id, kinds=("annotate", "rework"))
        model = db.get(ModelRecord, body.model_id)
        if model is None:
            raise projects.NotFoundError(f"no model {body.model_id}", where="model_id", hint="register it first")
        task = prelabels.prelabel(db, audit, blobs, platform.settings, user, task, model)
        db.commit()
        return JSONResponse(
            {"task": task.id, "draft_version": task.draft_version, "source": task.draft_source},
            headers={"ETag": f'"{task.draft_version}"'},
        )
