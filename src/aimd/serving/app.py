"""The FastAPI app of the inference service (KServe v2 route names; OpenAPI at ``/openapi.json``).

Routes are thin: they check the caller (one dependency per scope), parse the body and call
:class:`~aimd.serving.service.InferenceService`. Every :class:`~aimd.core.errors.AimdError` becomes a
4xx JSON answer naming the field and the fix (:func:`aimd.serving.errors.http_status`).

=========================================  ======  ==========================================
route                                      scope   what
=========================================  ======  ==========================================
GET  /v2/health/live, /v2/health/ready     —       liveness, readiness (models loaded, database and PACS up)
GET  /metrics                              —       Prometheus metrics
GET  /v2/models, /v2/models/{m}[/versions/{v}]  infer   model metadata: specs, hash, version
GET  /v2/models/{m}[/versions/{v}]/ready   infer   model readiness
POST /v2/models/{m}[/versions/{v}]/infer   infer   NIfTI / DICOM files / zip / PNG, or JSON
                                                   {study_uid, series_uid}; ``Prefer: respond-async``
GET  /v2/jobs/{id}                         infer   an asynchronous job
GET  /v2/results/{id}[/files/{name}]       infer   a result and its files
POST /v2/results/{id}/review               review  accept / reject / modified mask
POST /v2/repository/models/{m}/load|unload admin   load or unload a model version
=========================================  ======  ==========================================
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy.exc as sa_exc
from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from aimd import __version__
from aimd.core.errors import AimdError, InvalidInputError
from aimd.serving.db import TokenInfo
from aimd.serving.errors import (
    BusyError,
    DatabaseUnavailableError,
    NotFoundError,
    RateLimitedError,
    UploadTooLargeError,
    http_status,
)
from aimd.serving.registry import ModelRegistry
from aimd.serving.service import InferenceService
from aimd.serving.settings import ServeSettings

_UID = r"^[0-9]+(\.[0-9]+)*$"


class StudyRef(BaseModel):
    """A series to pull from the PACS."""

    model_config = ConfigDict(extra="forbid")

    study_uid: str = Field(pattern=_UID, max_length=64)
    series_uid: str = Field(pattern=_UID, max_length=64)
    store: bool = Field(True, description="store the SEG and SR back to the PACS")


class LoadRequest(BaseModel):
    """Load a model version (admin)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    version: str | None = None


def _error(err: AimdError) -> JSONResponse:
    headers = {}
    if isinstance(err, BusyError | RateLimitedError):
        headers["Retry-After"] = str(max(1, int(round(err.retry_after + 0.49))))
    if http_status(err) == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(err.to_dict(), status_code=http_status(err), headers=headers)


def _service(request: Request) -> InferenceService:
    svc: InferenceService = request.app.state.service
    return svc


def require(scope: str) -> Callable[..., TokenInfo]:
    """A dependency that returns the caller's token after checking it has ``scope``."""

    def check(request: Request) -> TokenInfo:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        return _service(request).authorize(token, scope)

    check.__name__ = f"require_{scope}"
    return check


Infer = Annotated[TokenInfo, Depends(require("infer"))]
Review = Annotated[TokenInfo, Depends(require("review"))]
Admin = Annotated[TokenInfo, Depends(require("admin"))]


async def _read_parts(request: Request, svc: InferenceService) -> tuple[list[tuple[str, bytes]], dict[str, str]]:
    limits = svc.settings.limits
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limits.max_bytes + 2**20:
        raise UploadTooLargeError(
            f"request body is {length} bytes, more than the limit {limits.max_bytes}",
            where="body",
            hint="send one series per request, or raise --max-upload-mb",
        )
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=limits.max_files, max_fields=50)
        except Exception as err:  # starlette raises for malformed or oversized multipart bodies
            raise InvalidInputError(
                f"multipart body cannot be parsed ({err})", where="body", hint="send files in the 'files' field"
            ) from err
        parts, fields = [], {}
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                data = await value.read()
                parts.append((value.filename or key, data))
                if sum(len(d) for _, d in parts) > limits.max_bytes:
                    raise UploadTooLargeError(
                        f"upload is larger than the limit {limits.max_bytes} bytes",
                        where=key,
                        hint="send one series per request",
                    )
            else:
                fields[key] = str(value)
        return parts, fields
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limits.max_bytes:
            raise UploadTooLargeError(
                f"request body is larger than the limit {limits.max_bytes} bytes",
                where="body",
                hint="send one series per request",
            )
    name = {"application/zip": "upload.zip", "application/dicom": "upload.dcm", "image/png": "upload.png"}.get(
        ctype, "upload.nii.gz" if ctype in ("application/gzip", "application/x-gzip") else "upload"
    )
    return ([(name, bytes(body))] if body else []), {}


async def _watch(request: Request, fn: Callable[[threading.Event], Any]) -> Any:
    """Run ``fn(cancel)`` in a worker thread; a client that disconnects sets ``cancel``."""
    cancel = threading.Event()
    task = asyncio.ensure_future(run_in_threadpool(fn, cancel))
    while True:
        done, _ = await asyncio.wait({task}, timeout=0.2)
        if done:
            return task.result()
        if not cancel.is_set() and await request.is_disconnected():
            cancel.set()


def lost_connection(err: BaseException) -> bool:
    """Whether ``err``, or an exception it arose from, says the database connection is gone.

    A link cut while the pool pings a connection can surface as a ProgrammingError ("can't change
    'autocommit' now") raised while handling the driver's OperationalError, so the chain is walked.

    >>> lost_connection(sa_exc.OperationalError("SELECT 1", {}, OSError("connection socket closed")))
    True
    >>> lost_connection(ValueError("no"))
    False
    """
    seen: BaseException | None = err
    while seen is not None:
        kind = type(seen)
        if isinstance(seen, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True
        if getattr(seen, "connection_invalidated", False):
            return True
        if kind.__module__.startswith("psycopg") and kind.__name__ in ("OperationalError", "InterfaceError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def create_app(settings: ServeSettings, registry: ModelRegistry | None = None) -> FastAPI:
    """Build the app; the service (database, audit, PACS, job recovery) starts with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = InferenceService(settings, registry)
        app.state.service = svc
        app.state.recovered = svc.recover()
        scp = None
        if settings.dicom_port is not None:
            from aimd.serving.dimse import StorageSCP

            models = svc.registry.all()
            name = settings.dimse_model or (models[0].name if models else "")
            scp = StorageSCP(
                svc,
                model=name,
                port=settings.dicom_port,
                ae_title=settings.ae_title,
                host=settings.host,
                idle_seconds=settings.series_idle_seconds,
            )
            scp.start()
        app.state.dimse = scp
        try:
            yield
        finally:
            if scp is not None:
                scp.stop()
            svc.close()

    app = FastAPI(
        title="aimd inference service",
        version=__version__,
        lifespan=lifespan,
        description="The AI device of 003: KServe v2 inference, findings, DICOM SEG/SR, explanations, "
        "clinician review and an audited record of every inference.",
    )

    @app.exception_handler(AimdError)
    async def aimd_error(_request: Request, err: AimdError) -> JSONResponse:
        return _error(err)

    @app.exception_handler(sa_exc.DBAPIError)
    async def database_down(request: Request, err: sa_exc.DBAPIError) -> JSONResponse:
        if not lost_connection(err):
            raise err  # a real database error stays a 500
        svc: InferenceService | None = getattr(request.app.state, "service", None)
        where = svc.db.engine.url.render_as_string(hide_password=True) if svc else "database"
        return _error(
            DatabaseUnavailableError(
                f"the database is unreachable ({type(err.orig).__name__ if err.orig else type(err).__name__})",
                retry_after=5.0,
                where=where,
                hint="check that the database server is running and reachable; the service reconnects by itself",
            )
        )

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[..., Any]) -> Response:
        svc: InferenceService | None = getattr(request.app.state, "service", None)
        started = time.perf_counter()
        if svc:
            svc.metrics.in_flight.inc()
        try:
            response: Response = await call_next(request)
        finally:
            if svc:
                svc.metrics.in_flight.dec()
        if svc:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            svc.metrics.requests.labels(route=path, method=request.method, code=str(response.status_code)).inc()
            svc.metrics.latency.labels(route=path).observe(time.perf_counter() - started)
        return response

    @app.get("/v2/health/live", tags=["health"])
    def live() -> dict[str, bool]:
        """Liveness: the process answers."""
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"])
    def ready(request: Request) -> JSONResponse:
        """Readiness: at least one model is loaded and every dependency (database, PACS) answers now;
        a 503 names each dependency that is down."""
        svc = _service(request)
        down = svc.readiness.down()
        models = len(svc.registry.all())
        body: dict[str, Any] = {"ready": bool(models) and not down}
        if down:  # the reason first: what a log line or a truncated answer shows
            body["error"] = "not ready: " + "; ".join(f"{d['dependency']} down ({d['error']})" for d in down)
            body["hint"] = down[0]["hint"]
        elif not models:
            body["error"], body["hint"] = "not ready: no model loaded", "load a model (--model NAME=FILE)"
        body["dependencies"] = {
            name: "down" if any(d["dependency"] == name for d in down) else "up" for name in svc.readiness.probes
        }
        body["down"] = down
        body["models"] = models
        body["inference_workers"] = (
            svc.pool.describe() if svc.pool is not None else {"workers": 1, "pids": [], "models": []}
        )
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/metrics", tags=["health"])
    def metrics(request: Request) -> Response:
        """Prometheus metrics."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(_service(request).metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v2/dimse", tags=["inference"])
    def dimse(request: Request, _t: Infer) -> dict[str, Any]:
        """Series received by the DICOM storage SCP and what became of each."""
        scp = request.app.state.dimse
        if scp is None:
            raise NotFoundError(
                "the DICOM storage SCP is off", where="--dicom-port", hint="start the service with --dicom-port P"
            )
        return {"ae_title": scp.ae_title, "port": scp.port, "series": list(scp.outcomes)}

    @app.get("/v2", tags=["models"])
    def server_metadata(request: Request, _t: Infer) -> dict[str, Any]:
        """Server metadata (KServe v2)."""
        return {"name": "aimd", "version": __version__, "extensions": ["model_repository", "async_jobs", "review"]}

    @app.get("/v2/models", tags=["models"])
    def models(request: Request, _t: Infer) -> dict[str, Any]:
        """Every loaded model version."""
        return {"models": [m.public() for m in _service(request).registry.all()]}

    @app.get("/v2/models/{name}", tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["models"])
    def model_metadata(request: Request, name: str, _t: Infer, version: str | None = None) -> dict[str, Any]:
        """Model metadata: input/output spec, file hash, version, 000 §4 description."""
        model = _service(request).registry.get(name, version)
        doc = model.public()
        if doc["description"] is None:
            try:
                from aimd.models.describe import describe_model

                model.extra["description"] = describe_model(model.path, measure=False)
            except (AimdError, OSError, ValueError) as err:
                model.extra["description"] = {"available": False, "reason": str(err)}
            doc["description"] = model.extra["description"]
        return doc

    @app.get("/v2/models/{name}/ready", tags=["models"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["models"])
    def model_ready(request: Request, name: str, _t: Infer, version: str | None = None) -> dict[str, Any]:
        """Model readiness."""
        model = _service(request).registry.get(name, version)
        return {"name": model.name, "version": model.version, "ready": True}

    @app.post("/v2/models/{name}/infer", tags=["inference"], status_code=200)
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["inference"], status_code=200)
    async def infer(request: Request, name: str, token: Infer, version: str | None = None) -> JSONResponse:
        """Run a model on an upload or a PACS series; ``Prefer: respond-async`` answers 202 with a job."""
        svc = _service(request)
        model = svc.registry.get(name, version)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        ref: StudyRef | None = None
        parts: list[tuple[str, bytes]] = []
        if ctype == "application/json":
            try:
                raw = await request.json()
            except ValueError as err:
                raise InvalidInputError(
                    "body is not valid JSON", where="body", hint='send {"study_uid": "...", "series_uid": "..."}'
                ) from err
            ref = _parse_ref(raw)
        else:
            parts, _fields = await _read_parts(request, svc)
            if not parts:
                raise InvalidInputError(
                    "no file uploaded", where="files", hint="send a NIfTI file, DICOM files, a zip of a series or a PNG"
                )
        if "respond-async" in request.headers.get("prefer", "").lower():
            req = ref.model_dump() if ref else {}
            job_id = await run_in_threadpool(svc.submit_job, model, req, parts, token)
            url = f"/v2/jobs/{job_id}"
            return JSONResponse(
                {"job_id": job_id, "status": "queued", "status_url": url},
                status_code=202,
                headers={"Location": url, "Preference-Applied": "respond-async"},
            )

        def work(cancel: threading.Event) -> dict[str, Any]:
            # announced to the model's batcher while the input is read: a batch may wait for it
            with svc.batcher(model).expect() as ticket, tempfile.TemporaryDirectory(prefix="aimd-infer-") as tmp:
                if ref is not None:
                    image = svc.pull_from_pacs(ref.study_uid, ref.series_uid, Path(tmp))
                    source: dict[str, Any] = {"pacs": {"study_uid": ref.study_uid, "series_uid": ref.series_uid}}
                else:
                    image = svc.read_input(parts, Path(tmp))
                    source = {"upload": [n for n, _ in parts]}
                return svc.infer(
                    model,
                    image,
                    actor=token,
                    source=source,
                    cancel=cancel,
                    store_pacs=bool(ref and ref.store),
                    ticket=ticket,
                )

        doc = await _watch(request, work)
        return JSONResponse(_public_result(doc))

    @app.get("/v2/jobs/{job_id}", tags=["inference"])
    def job(request: Request, job_id: str, _t: Infer) -> dict[str, Any]:
        """An asynchronous job: queued, running, done (with its result) or failed (with the error)."""
        svc = _service(request)
        row = svc.db.job(job_id)
        if row is None:
            raise NotFoundError(f"no job {job_id!r}", where="job_id", hint="use the id the 202 answer returned")
        out = {
            k: row[k]
            for k in ("id", "model", "version", "status", "result_id", "error", "attempts", "created", "updated")
        }
        if row["result_id"]:
            out["result_url"] = f"/v2/results/{row['result_id']}"
        return out

    @app.get("/v2/results/{result_id}", tags=["results"])
    def result(request: Request, result_id: str, _t: Infer) -> dict[str, Any]:
        """A stored result with its reviews."""
        return _public_result(_service(request).result(result_id))

    @app.get("/v2/results/{result_id}/files/{name}", tags=["results"])
    def result_file(request: Request, result_id: str, name: str, _t: Infer) -> FileResponse:
        """One result file: mask NIfTI, DICOM SEG, DICOM SR, heatmap NIfTI or PNG."""
        path = _service(request).result_file(result_id, name)
        media = {".dcm": "application/dicom", ".png": "image/png"}.get(path.suffix, "application/gzip")
        return FileResponse(path, media_type=media, filename=path.name)

    @app.post("/v2/results/{result_id}/review", tags=["results"])
    async def review(request: Request, result_id: str, token: Review) -> dict[str, Any]:
        """Record a clinician's accept / reject / modified mask; Dice and changed voxels are stored."""
        svc = _service(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        mask = None
        if ctype == "application/json":
            try:
                fields = dict(await request.json())
            except (ValueError, TypeError) as err:
                raise InvalidInputError(
                    "body is not a JSON object", where="body", hint='send {"reviewer": "...", "decision": "accept"}'
                ) from err
        else:
            parts, fields = await _read_parts(request, svc)
            mask = parts[0] if parts else None
        return await run_in_threadpool(
            lambda: svc.review(
                result_id,
                reviewer=str(fields.get("reviewer", "")),
                decision=str(fields.get("decision", "")),
                comment=str(fields.get("comment", "")),
                actor=token,
                mask=mask,
            )
        )

    @app.post("/v2/repository/models/{name}/load", tags=["repository"])
    def load(request: Request, name: str, body: LoadRequest, token: Admin) -> dict[str, Any]:
        """Load a model version (admin)."""
        model = _service(request).load_model(name, body.path, body.version, actor=f"token:{token.id}")
        return model.public()

    @app.post("/v2/repository/models/{name}/unload", tags=["repository"])
    @app.post("/v2/repository/models/{name}/versions/{version}/unload", tags=["repository"])
    def unload(request: Request, name: str, token: Admin, version: str | None = None) -> dict[str, Any]:
        """Unload a model version (admin)."""
        model = _service(request).unload_model(name, version, actor=f"token:{token.id}")
        return {"name": model.name, "version": model.version, "unloaded": True}

    return app


def _parse_ref(raw: Any) -> StudyRef:
    from pydantic import ValidationError

    try:
        return StudyRef.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidInputError(
            f"{first['msg']}", where=field, hint='send {"study_uid": "1.2...", "series_uid": "1.2..."} (dotted digits)'
        ) from err


def _public_result(doc: dict[str, Any]) -> dict[str, Any]:
    base = f"/v2/results/{doc['id']}/files/"
    return {**doc, "links": {k: base + Path(v).name for k, v in doc.get("files", {}).items()}}


__all__ = ["create_app", "require"]
