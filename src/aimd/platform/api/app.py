"""The platform's HTTP API (FastAPI): JSON under ``/api/v1``, OpenAPI at ``/openapi.json``,
``/v2/health/live|ready`` and Prometheus ``/metrics``.

Routes are thin: they check the caller through one dependency per :class:`~aimd.platform.rbac.Permission`
(:func:`need`), call a service function, commit, and answer — a save the client is told succeeded is
in the database. Errors come back as ``{"error", "message", "where", "hint"}`` with a 4xx status.
"""

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.datastructures import Default, DefaultPlaceholder
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy.exc import DataError as DBDataError
from sqlalchemy.orm import Session

from aimd import __version__
from aimd.core.errors import AimdError, PermissionDeniedError
from aimd.platform import auth
from aimd.platform.api import (
    routes_audit,
    routes_marks,
    routes_projects,
    routes_studies,
    routes_tasks,
    routes_users,
    routes_view,
    routes_workspace,
    schemas,
)
from aimd.platform.api.common import (
    Deps,
    _error_body,
    _status,
)
from aimd.platform.app_state import Platform
from aimd.platform.models import (
    AuthSession,
    User,
)
from aimd.platform.rbac import Permission, allowed
from aimd.platform.series.study_jobs import ImportWorker

__all__ = ["create_app"]


def create_app(platform: Platform) -> FastAPI:
    """The FastAPI application of one platform (no work at import time)."""
    imports = ImportWorker(platform, routes_studies.describe_error, platform.settings.import_workers)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        imports.recover()  # imports a stopped process left running are run again (or failed)
        try:
            yield
        finally:
            imports.close()

    app = FastAPI(
        title="aimd annotation platform",
        version=__version__,
        description="Projects, roles, the 3-level QC workflow, model-assisted labels, audit (001).",
        responses=schemas.ERRORS,
        lifespan=lifespan,
    )
    app.state.imports = imports
    app.router.route_class = _EncodedInLoop
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

    d = Deps(platform, DB, Current, need)

    # ------------------------------------------------------------------ health and metrics
    @app.get("/v2/health/live", tags=["health"], response_model=schemas.LiveOut)
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"], response_model=schemas.ReadyOut, responses=schemas.errors(503))
    def ready(db: DB) -> JSONResponse:
        try:
            db.execute(sa.text("SELECT 1"))
        except Exception as err:  # any database failure means not ready
            return JSONResponse({"ready": False, "reason": str(err)[:200]}, status_code=503)
        return JSONResponse({"ready": True})

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={
            200: {"description": "Prometheus metrics", "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}
        },
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    for routes in (
        routes_users,
        routes_projects,
        routes_tasks,
        routes_audit,
        routes_marks,
        routes_workspace,
        routes_studies,
        routes_view,
    ):
        routes.register(app, d)
    _mount_workspace(app)
    return app


class _EncodedInLoop(APIRoute):
    """A route whose answer is encoded on the event loop, not validated against a response model in a
    worker thread. A sync route's session (on SQLite: the database write lock, ``BEGIN IMMEDIATE``) stays
    open until the answer is built; waiting there for a worker thread while every worker waits for that
    lock stalled all requests once more clients than threads (40) were active.

    The response model (``response_model=`` or the return annotation) still describes the answer: it
    moves to the route's documented ``responses`` for its status code, so the OpenAPI document keeps
    every answer's schema without a run-time validation."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        model = kwargs.get("response_model", Default(None))
        if isinstance(model, DefaultPlaceholder):
            model = get_typed_return_annotation(endpoint)
        if model is not None and not (isinstance(model, type) and issubclass(model, Response)):
            code = kwargs.get("status_code") or 200
            responses = dict(kwargs.get("responses") or {})
            responses[code] = {"model": model, **responses.get(code, {})}
            kwargs["responses"] = responses
        kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)


def _mount_workspace(app: FastAPI) -> None:
    """Serve the browser workspace (built by ``make web`` into ``aimd/platform/static``) at ``/``."""
    from pathlib import Path

    from fastapi.staticfiles import StaticFiles

    static = Path(__file__).resolve().parent.parent / "static"
    if (static / "index.html").is_file():
        app.mount("/", StaticFiles(directory=static, html=True), name="workspace")
        return

    @app.get("/", include_in_schema=False)
    def no_workspace() -> JSONResponse:
        return JSONResponse(
            {"error": "WorkspaceNotBuilt", "message": "the browser workspace is not built", "hint": "run `make web`"},
            status_code=503,
        )
