"""The platform's HTTP API (FastAPI): JSON under ``/api/v1``, OpenAPI at ``/openapi.json``,
``/v2/health/live|ready`` and Prometheus ``/metrics``.

Routes are thin: they check the caller through one dependency per :class:`~aimd.platform.rbac.Permission`
(:func:`need`), call a service function, commit, and answer — a save the client is told succeeded is
in the database. Errors come back as ``{"error", "message", "where", "hint"}`` with a 4xx status.
"""

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from aimd import __version__
from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.errors import AimdError, IntegrityError, InvalidInputError, PermissionDeniedError
from aimd.imaging.windowing import WINDOW_PRESETS
from aimd.platform import auth, members, prelabels, projects, workflow
from aimd.platform.app_state import Platform
from aimd.platform.exporting import export_project
from aimd.platform.masks import MaskError
from aimd.platform.models import (
    AuthSession,
    Case,
    ChangeRequest,
    IdempotencyRecord,
    ModelRecord,
    Submission,
    Task,
    User,
)
from aimd.platform.rbac import CLASSIFICATIONS, Permission, Role, allowed

__all__ = ["create_app"]

NPY = "application/octet-stream"
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=500)
    totp: str | None = Field(None, max_length=10)


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Role
    clearance: str = Field("internal", description=f"one of {list(CLASSIFICATIONS)}")
    password: str | None = Field(None, max_length=500)


class UserPatch(BaseModel):
    role: Role | None = None
    disabled: bool | None = None
    clearance: str | None = None


class DistributeIn(BaseModel):
    annotators: list[str] | None = None


class MembersIn(BaseModel):
    usernames: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(min_length=1, max_length=500)


class DecisionIn(BaseModel):
    outcome: str = Field(min_length=1, max_length=20)
    reason: str = Field("", max_length=5000)


class ChangeIn(BaseModel):
    case_id: int = Field(ge=1, le=2**31 - 1)
    reason: str = Field(min_length=1, max_length=5000)


class ChangeDecisionIn(BaseModel):
    approve: bool


class SampleIn(BaseModel):
    seed: int = Field(0, ge=0, le=2**63 - 1)


class ModelIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    version: str = Field(min_length=1, max_length=50)
    path: str | None = Field(None, min_length=1, description="a model file on the server")
    endpoint: str | None = Field(
        None, min_length=1, max_length=500, description="or the base URL of a running aimd serve"
    )
    served_model: str | None = Field(None, max_length=100, description="the model's name on the service (default name)")
    served_version: str | None = Field(
        None, max_length=50, description="a version on the service (default its default)"
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    label_values: dict[str, int] = Field(description="model output value → project mask value")


class SubmitIn(BaseModel):
    attributes: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per mask value, the object's attributes from the taxonomy"
    )
    objects: list[dict[str, Any]] = Field(
        default_factory=list, description="vector objects: {id, label_code, type bbox/point/polygon, coordinates}"
    )
    spans: list[dict[str, Any]] = Field(
        default_factory=list, description="report text spans {id, start, end, text, semantic_type} (001 §8.5.2)"
    )
    links: dict[str, list[str]] = Field(default_factory=dict, description="mask value → linked span ids")

    def marks(self) -> dict[str, Any]:
        return {"objects": self.objects, "spans": self.spans, "links": self.links}


class PrelabelIn(BaseModel):
    model_id: int = Field(ge=1, le=2**31 - 1)


def _status(err: AimdError) -> int:
    if isinstance(err, MaskError):
        return err.status
    for cls, code in (
        (auth.AuthError, 401),
        (PermissionDeniedError, 403),
        (projects.NotFoundError, 404),
        (projects.ConflictError, 409),
        (workflow.PreconditionRequiredError, 428),
        (IntegrityError, 409),
        (prelabels.ModelServiceError, 502),
    ):
        if isinstance(err, cls):
            return code
    return 422


def _error_body(err: AimdError) -> dict[str, Any]:
    body: dict[str, Any] = err.to_dict()
    for extra in ("findings", "hits"):
        if hasattr(err, extra):
            body[extra] = getattr(err, extra)
    return body


def _user_out(u: User) -> dict[str, Any]:
    level = next((k for k, v in CLASSIFICATIONS.items() if v == u.clearance), str(u.clearance))
    return {
        "id": u.id,
        "username": u.username,
        "role": u.role,
        "clearance": level,
        "disabled": u.disabled,
        "mfa": bool(u.totp_secret),
    }


def _labels(label_map: dict[str, str]) -> list[dict[str, Any]]:
    """The project's labels with their taxonomy names, category and attribute schemas (for the workspace)."""
    tax = default_taxonomy()
    out = []
    for value, code in sorted(label_map.items(), key=lambda kv: int(kv[0])):
        node = tax.get(code)
        if node is None:
            continue
        out.append(
            {
                "value": int(value),
                "code": code,
                "name_en": node.name_en,
                "name_zh": node.name_zh,
                "category": node.category.value,
                "parent": node.parent,
                "attributes": [a.model_dump(mode="json") for a in node.attributes],
            }
        )
    return out


def _project_out(p: Any) -> dict[str, Any]:
    return {
        "labels": _labels(p.label_map),
        "id": p.id,
        "name": p.name,
        "task_definition": p.task_definition,
        "taxonomy": p.taxonomy,
        "label_map": p.label_map,
        "readers": p.readers,
        "sampling_ratio": p.sampling_ratio,
        "dice_threshold": p.dice_threshold,
        "kappa_threshold": p.kappa_threshold,
        "classification": p.classification,
        "version": p.version,
        "frozen": p.frozen,
        "members_only": p.members_only,
    }


def _task_out(t: Task) -> dict[str, Any]:
    return {
        "id": t.id,
        "project": t.project_id,
        "case": t.case_id,
        "kind": t.kind,
        "status": t.status,
        "assignee": t.assignee_id,
        "reader": t.reader,
        "parent": t.parent_id,
        "draft_version": t.draft_version,
        "draft_source": t.draft_source,
        "prelabel_source": t.prelabel_source,
    }


def create_app(platform: Platform) -> FastAPI:
    """The FastAPI application of one platform (no work at import time)."""
    app = FastAPI(
        title="aimd annotation platform",
        version=__version__,
        description="Projects, roles, the 3-level QC workflow, model-assisted labels, audit (001).",
    )
    registry = CollectorRegistry()
    requests = Counter("aimd_platform_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("aimd_platform_request_seconds", "request latency", ["method", "route"], registry=registry)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Callable[..., Any]) -> Response:
        started = time.perf_counter()
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        requests.labels(request.method, route, str(response.status_code)).inc()
        latency.labels(request.method, route).observe(time.perf_counter() - started)
        response.headers["x-request-id"] = rid
        return response

    @app.exception_handler(AimdError)
    async def _aimd_error(_request: Request, err: AimdError) -> JSONResponse:
        return JSONResponse(_error_body(err), status_code=_status(err))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DBDataError)
    async def _data_error(_request: Request, err: Exception) -> JSONResponse:
        # e.g. an id beyond the database's integer range: bad input, not a server fault
        body = {
            "error": "InvalidInputError",
            "message": f"a value is out of range for the database ({getattr(err, 'orig', err)})",
            "where": "request",
            "hint": "send ids and numbers within 32-bit integer range",
        }
        return JSONResponse(body, status_code=422)

    def db_session() -> Iterator[Session]:
        with platform.sessions() as db:
            yield db

    DB = Annotated[Session, Depends(db_session)]

    def current(db: DB, authorization: Annotated[str | None, Header()] = None) -> tuple[User, AuthSession]:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise auth.AuthError("missing bearer token", where="Authorization", hint="log in at /api/v1/auth/login")
        who = auth.resolve_token(db, authorization.split(None, 1)[1].strip())
        db.commit()  # end the read: on SQLite every transaction holds the write lock
        return who

    Current = Annotated[tuple[User, AuthSession], Depends(current)]

    def need(*perms: Permission) -> Any:
        def check(who: Current) -> User:
            user = who[0]
            if not any(allowed(user.role, p) for p in perms):
                raise PermissionDeniedError(
                    f"role {user.role} may not {' / '.join(p.value for p in perms)}",
                    where="permission",
                    hint="ask an admin for the right role",
                )
            return user

        return Annotated[User, Depends(check)]

    audit, blobs = platform.audit, platform.blobs

    # ------------------------------------------------------------------ health and metrics
    @app.get("/v2/health/live", tags=["health"])
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    def ready(db: DB) -> JSONResponse:
        try:
            db.execute(sa.text("SELECT 1"))
        except Exception as err:  # any database failure means not ready
            return JSONResponse({"ready": False, "reason": str(err)[:200]}, status_code=503)
        return JSONResponse({"ready": True})

    @app.get("/metrics", tags=["health"])
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # ------------------------------------------------------------------ auth and users
    @app.post("/api/v1/auth/login", tags=["auth"])
    async def login(body: LoginIn, request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        client = request.client.host if request.client else ""

        def first() -> tuple[int, str]:
            with platform.sessions() as db:
                try:
                    user = auth.begin_login(db, audit, username=body.username, client=client)
                finally:
                    db.commit()  # refusals and their audit entries are kept; the hash runs outside
                return user.id, user.password_hash

        user_id, stored = await run_in_threadpool(first)
        ok = await auth.verify_password_queued(stored, body.password)

        def second() -> dict[str, Any]:
            with platform.sessions() as db:
                user = db.get(User, user_id)
                assert user is not None
                try:
                    result = auth.finish_login(
                        db, audit, platform.settings, user, password_ok=ok, totp=body.totp, client=client
                    )
                finally:
                    db.commit()  # failed attempts and their audit entries are kept
                return {
                    "token": result.token,
                    "expires_at": result.expires_at.isoformat() + "Z",
                    "user": _user_out(result.user),
                    "ended_other_sessions": result.ended_sessions,
                }

        return await run_in_threadpool(second)

    @app.post("/api/v1/auth/logout", tags=["auth"])
    def logout(who: Current, db: DB) -> dict[str, bool]:
        user, sess = who
        auth.logout(db, audit, db.merge(user), db.merge(sess))
        db.commit()
        return {"ok": True}

    @app.get("/api/v1/me", tags=["auth"])
    def me(who: Current) -> dict[str, Any]:
        return _user_out(who[0])

    @app.get("/api/v1/users", tags=["users"])
    def list_users(user: need(Permission.USER_MANAGE), db: DB) -> list[dict[str, Any]]:
        return [_user_out(u) for u in db.scalars(sa.select(User).order_by(User.id))]

    @app.post("/api/v1/users", tags=["users"], status_code=201)
    def add_user(body: UserIn, user: need(Permission.USER_MANAGE), db: DB) -> dict[str, Any]:
        level = _clearance(body.clearance)
        _, shown = auth.create_user(
            db,
            audit,
            platform.settings,
            username=body.username,
            role=body.role.value,
            password=body.password,
            clearance=level,
            actor=user.username,
        )
        db.commit()
        return shown

    @app.patch("/api/v1/users/{username}", tags=["users"])
    def patch_user(username: str, body: UserPatch, user: need(Permission.USER_MANAGE), db: DB) -> dict[str, Any]:
        target = db.scalar(sa.select(User).where(User.username == username))
        if target is None:
            raise projects.NotFoundError(f"no user {username!r}", where="username", hint="list /api/v1/users")
        change = body.model_dump(exclude_none=True, mode="json")
        if body.role is not None:
            target.role = body.role.value
        if body.disabled is not None:
            target.disabled = body.disabled
            if body.disabled:
                db.execute(
                    sa.update(AuthSession)
                    .where(AuthSession.user_id == target.id, AuthSession.ended_at.is_(None))
                    .values(ended_at=sa.func.current_timestamp(), end_reason="account disabled")
                )
        if body.clearance is not None:
            target.clearance = _clearance(body.clearance)
        audit.append(user.username, "user.change", f"user:{username}", change, connection=db)
        db.commit()
        return _user_out(target)

    # ------------------------------------------------------------------ projects and cases
    @app.get("/api/v1/projects", tags=["projects"])
    def list_projects(user: need(Permission.PROJECT_READ), db: DB) -> list[dict[str, Any]]:
        return [_project_out(p) for p in projects.visible_projects(db, user)]

    @app.post("/api/v1/projects", tags=["projects"], status_code=201)
    def create_project(body: projects.ProjectCreate, user: need(Permission.PROJECT_CREATE), db: DB) -> dict[str, Any]:
        p = projects.create_project(db, audit, user, body)
        db.commit()
        return _project_out(p)

    @app.get("/api/v1/projects/{project_id}", tags=["projects"])
    def get_project(project_id: Id, user: need(Permission.PROJECT_READ), db: DB) -> dict[str, Any]:
        return _project_out(projects.get_project(db, user, project_id))

    @app.delete("/api/v1/projects/{project_id}", tags=["projects"])
    def delete_project(
        project_id: int,
        user: need(Permission.PROJECT_DELETE),
        db: DB,
        reason: Annotated[str, Query(min_length=1, max_length=2000)],
    ) -> dict[str, Any]:
        p = projects.get_project(db, user, project_id)
        rec = projects.destroy_project(db, audit, user, p, reason)
        db.commit()  # the rows go first; blobs are unlinked only once nothing committed names them
        out = {"destruction_record": rec.id, "what": rec.what, "method": rec.method, "by": rec.destroyed_by}
        grace = platform.settings.blob_gc_grace_seconds
        removed = projects.collect_blobs(
            db, audit, blobs, user.username, candidates=set(rec.what["blobs"]), grace_seconds=grace
        )
        db.commit()
        return {**out, "blobs_removed": removed}

    @app.get("/api/v1/projects/{project_id}/members", tags=["projects"])
    def list_members(project_id: Id, user: need(Permission.PROJECT_MEMBERS), db: DB) -> dict[str, Any]:
        return members.list_members(db, projects.get_project(db, user, project_id))

    @app.post("/api/v1/projects/{project_id}/members", tags=["projects"])
    def add_members(project_id: Id, body: MembersIn, user: need(Permission.PROJECT_MEMBERS), db: DB) -> dict[str, Any]:
        out = members.add_members(db, audit, user, projects.get_project(db, user, project_id), body.usernames)
        db.commit()
        return out

    @app.delete("/api/v1/projects/{project_id}/members/{username}", tags=["projects"])
    def remove_member(
        project_id: Id, username: Annotated[str, Path(max_length=100)], user: need(Permission.PROJECT_MEMBERS), db: DB
    ) -> dict[str, Any]:
        out = members.remove_member(db, audit, user, projects.get_project(db, user, project_id), username)
        db.commit()
        return out

    @app.post("/api/v1/projects/{project_id}/cases", tags=["cases"], status_code=201)
    def import_case(
        project_id: int, body: projects.CaseImport, user: need(Permission.CASE_IMPORT), db: DB
    ) -> dict[str, Any]:
        p = projects.get_project(db, user, project_id)
        try:
            case = projects.import_case(db, audit, blobs, user, p, body)
        except projects.IdentifiersFoundError:
            db.commit()  # the refusal is audited
            raise
        db.commit()
        return {"id": case.id, "case_key": case.case_key, "image": case.image}

    @app.get("/api/v1/projects/{project_id}/cases", tags=["cases"])
    def list_cases(project_id: Id, user: need(Permission.PROJECT_READ), db: DB) -> list[dict[str, Any]]:
        p = projects.get_project(db, user, project_id)
        query = sa.select(Case).where(Case.project_id == p.id).order_by(Case.id)
        if user.role != Role.ADMIN and user.role != Role.INTAKE:
            query = query.where(Case.id.in_(sa.select(Task.case_id).where(Task.assignee_id == user.id)))
        return [
            {"id": c.id, "case_key": c.case_key, "image": c.image, "report_text": c.report_text, "fields": c.fields}
            for c in db.scalars(query)
        ]

    @app.post("/api/v1/projects/{project_id}/distribute", tags=["tasks"])
    def distribute(
        project_id: int, body: DistributeIn, user: need(Permission.TASK_DISTRIBUTE), db: DB
    ) -> dict[str, Any]:
        p = projects.get_project(db, user, project_id)
        tasks = projects.distribute(db, audit, user, p, body.annotators)
        db.commit()
        return {"created": [_task_out(t) for t in tasks]}

    @app.get("/api/v1/projects/{project_id}/progress", tags=["projects"])
    def progress(project_id: Id, user: need(Permission.PROGRESS_READ), db: DB) -> dict[str, Any]:
        return projects.progress(db, projects.get_project(db, user, project_id))

    @app.post("/api/v1/projects/{project_id}/freeze", tags=["projects"])
    def freeze(project_id: Id, user: need(Permission.PROJECT_FREEZE), db: DB) -> dict[str, Any]:
        p = projects.freeze(db, audit, user, projects.get_project(db, user, project_id))
        db.commit()
        return _project_out(p)

    @app.post("/api/v1/projects/{project_id}/change-requests", tags=["projects"], status_code=201)
    def change_request(
        project_id: int, body: ChangeIn, user: need(Permission.CHANGE_REQUEST), db: DB
    ) -> dict[str, Any]:
        p = projects.get_project(db, user, project_id)
        cr = projects.request_change(db, audit, user, p, body.case_id, body.reason)
        db.commit()
        return {"id": cr.id, "status": cr.status, "from_version": cr.from_version}

    @app.post("/api/v1/change-requests/{cr_id}/decide", tags=["projects"])
    def decide_change(
        cr_id: int, body: ChangeDecisionIn, user: need(Permission.CHANGE_DECIDE), db: DB
    ) -> dict[str, Any]:
        cr = db.get(ChangeRequest, cr_id)
        if cr is None:
            raise projects.NotFoundError(f"no change request {cr_id}", where="change request", hint="check the id")
        projects.decide_change(db, audit, user, cr, body.approve)
        db.commit()
        return {"id": cr.id, "status": cr.status}

    @app.post("/api/v1/projects/{project_id}/qc/sample", tags=["qc"])
    def qc_sample(project_id: Id, body: SampleIn, user: need(Permission.QC_SAMPLE), db: DB) -> dict[str, Any]:
        out = workflow.sample_for_qc(db, audit, user, projects.get_project(db, user, project_id), body.seed)
        db.commit()
        return out

    @app.post("/api/v1/projects/{project_id}/export", tags=["projects"])
    def export(project_id: Id, user: need(Permission.EXPORT), db: DB) -> dict[str, Any]:
        out = export_project(
            db, audit, blobs, user, projects.get_project(db, user, project_id), platform.data_dir / "exports"
        )
        db.commit()
        return out

    # ------------------------------------------------------------------ tasks
    @app.get("/api/v1/tasks", tags=["tasks"])
    def list_tasks(
        who: Current, db: DB, project: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, status: str | None = None
    ) -> list[dict]:
        return [_task_out(t) for t in workflow.visible_tasks(db, who[0], project_id=project, status=status)]

    @app.get("/api/v1/tasks/{task_id}", tags=["tasks"])
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

    @app.get("/api/v1/tasks/{task_id}/image", tags=["tasks"])
    def task_image(task_id: Id, who: Current, db: DB) -> Response:
        task = workflow.get_task(db, who[0], task_id)
        case = db.get(Case, task.case_id)
        assert case is not None
        db.commit()  # read the blob outside the database transaction
        return Response(blobs.get(case.image_sha256), media_type=NPY)

    @app.get("/api/v1/tasks/{task_id}/draft", tags=["tasks"])
    def get_draft(task_id: Id, who: Current, db: DB) -> Response:
        task = workflow.get_task(db, who[0], task_id)
        if task.draft_sha256 is None:
            raise projects.NotFoundError(
                f"task {task_id} has no draft yet", where="draft", hint='save one with PUT and If-Match: "0"'
            )
        db.commit()  # read the blob outside the database transaction
        return Response(
            blobs.get(task.draft_sha256),
            media_type=NPY,
            headers={"ETag": f'"{task.draft_version}"', "X-Draft-Source": task.draft_source or ""},
        )

    @app.put(
        "/api/v1/tasks/{task_id}/draft",
        tags=["tasks"],
        openapi_extra={
            "requestBody": {"required": True, "content": {NPY: {"schema": {"type": "string", "format": "binary"}}}}
        },
    )
    async def put_draft(
        task_id: int,
        request: Request,
        user: need(Permission.TASK_ANNOTATE, Permission.TASK_ARBITRATE),
        if_match: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        body = await request.body()
        from starlette.concurrency import run_in_threadpool

        def work() -> Task:
            with platform.sessions() as db:
                task = workflow.get_task(db, user, task_id, kinds=_kinds(user))
                task = workflow.save_draft(db, audit, blobs, user, task, body, if_match)
                db.commit()
                return task

        task = await run_in_threadpool(work)
        return JSONResponse(
            {"task": task.id, "draft_version": task.draft_version, "mask_sha256": task.draft_sha256},
            headers={"ETag": f'"{task.draft_version}"'},
        )

    @app.post("/api/v1/tasks/{task_id}/submit", tags=["tasks"])
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

    @app.post("/api/v1/tasks/{task_id}/review", tags=["tasks"])
    def review(task_id: Id, body: DecisionIn, user: need(Permission.TASK_REVIEW), db: DB) -> dict[str, Any]:
        task = workflow.get_task(db, user, task_id, kinds=("review",))
        out = workflow.review(db, audit, user, task, body.outcome, body.reason)
        db.commit()
        return out

    @app.post("/api/v1/tasks/{task_id}/qc-decision", tags=["qc"])
    def qc_decision(task_id: Id, body: DecisionIn, user: need(Permission.QC_SAMPLE), db: DB) -> dict[str, Any]:
        task = workflow.get_task(db, user, task_id, kinds=("qc_sample",))
        out = workflow.review(db, audit, user, task, body.outcome, body.reason)
        db.commit()
        return out

    @app.post("/api/v1/models", tags=["models"], status_code=201)
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

    @app.post("/api/v1/tasks/{task_id}/prelabel", tags=["models"])
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

    # ------------------------------------------------------------------ diff and audit
    @app.get("/api/v1/cases/{case_id}/submissions", tags=["diff"])
    def submissions(case_id: Id, user: need(Permission.DIFF_READ), db: DB) -> list[dict[str, Any]]:
        case = db.get(Case, case_id)
        if case is None:
            raise projects.NotFoundError(f"no case {case_id}", where="case", hint="check the id")
        projects.get_project(db, user, case.project_id)
        return [
            {
                "id": s.id,
                "reader": s.reader,
                "annotator": s.annotator,
                "current": s.current,
                "project_version": s.project_version,
                "mask_sha256": s.mask_sha256,
                "correction": s.correction,
                "qc": s.qc,
            }
            for s in db.scalars(sa.select(Submission).where(Submission.case_id == case_id).order_by(Submission.id))
        ]

    @app.get("/api/v1/submissions/{submission_id}/mask", tags=["diff"])
    def submission_mask(submission_id: int, user: need(Permission.DIFF_READ), db: DB) -> Response:
        sub = _visible_submission(db, user, submission_id)
        return Response(blobs.get(sub.mask_sha256), media_type=NPY, headers={"X-Reader": str(sub.reader)})

    @app.get("/api/v1/windowing", tags=["projects"])
    def windowing(who: Current) -> dict[str, Any]:
        return {name: {"center": w.center, "width": w.width} for name, w in WINDOW_PRESETS.items()}

    @app.get("/api/v1/diff", tags=["diff"])
    def diff(a: QueryId, b: QueryId, user: need(Permission.DIFF_READ), db: DB) -> dict[str, Any]:
        _visible_submission(db, user, a)
        _visible_submission(db, user, b)
        return workflow.diff_submissions(db, blobs, a, b)

    @app.get("/api/v1/audit", tags=["audit"])
    def audit_entries(
        user: need(Permission.AUDIT_READ),
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after: int | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return audit.entries(subject=subject, actor=actor, action=action, after_seq=after, limit=limit)

    @app.get("/api/v1/audit/verify", tags=["audit"])
    def audit_verify(user: need(Permission.AUDIT_READ)) -> dict[str, Any]:
        bad = audit.verify()
        return {"ok": bad is None, "first_bad_index": bad, "entries": len(audit), "head_sha256": audit.head()}

    @app.post("/api/v1/audit/archive", tags=["audit"])
    def audit_archive(user: need(Permission.AUDIT_ARCHIVE)) -> dict[str, Any]:
        from aimd.platform.retention import archive_audit

        return archive_audit(platform, actor=user.username)

    _mount_workspace(app)
    return app


def _mount_workspace(app: FastAPI) -> None:
    """Serve the browser workspace (built by ``make web`` into ``aimd/platform/static``) at ``/``."""
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    static = Path(__file__).with_name("static")
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="workspace")
        return

    @app.get("/", include_in_schema=False)
    def no_workspace() -> JSONResponse:
        return JSONResponse(
            {"error": "WorkspaceNotBuilt", "message": "the browser workspace is not built", "hint": "run `make web`"},
            status_code=503,
        )


def _visible_submission(db: Session, user: User, submission_id: int) -> Submission:
    """The submission if its project is visible to ``user`` (404 otherwise)."""
    sub = db.get(Submission, submission_id)
    case = db.get(Case, sub.case_id) if sub is not None else None
    if sub is None or case is None:
        raise projects.NotFoundError(f"no submission {submission_id}", where="submission", hint="check the id")
    projects.get_project(db, user, case.project_id)
    return sub


def _kinds(user: User) -> tuple[str, ...]:
    return {Role.ANNOTATOR.value: ("annotate", "rework"), Role.ARBITER.value: ("arbitrate",)}.get(user.role, ())


def _clearance(name: str) -> int:
    if name not in CLASSIFICATIONS:
        raise InvalidInputError(
            f"unknown clearance {name!r}", where="clearance", hint=f"use one of {list(CLASSIFICATIONS)}"
        )
    return CLASSIFICATIONS[name]
