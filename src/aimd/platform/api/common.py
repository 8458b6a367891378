"""Request bodies, answer shapes, error statuses and the dependencies every route module shares."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.errors import AimdError, IntegrityError, InvalidInputError, PermissionDeniedError
from aimd.platform import auth, prelabels, projects, workflow
from aimd.platform.app_state import Platform
from aimd.platform.mask_store import MaskStore, manifest_of, manifest_stream, mask_npy
from aimd.platform.masks import MaskError
from aimd.platform.models import (
    Case,
    Submission,
    Task,
    User,
)
from aimd.platform.rbac import CLASSIFICATIONS, Role
from aimd.store import BlobStore

__all__ = ["MASK_HEADERS", "Deps", "blob_response", "mask_response"]

NPY = "application/octet-stream"
NPY_BODY = {"requestBody": {"required": True, "content": {NPY: {"schema": {"type": "string", "format": "binary"}}}}}
MAX_ID = 2**31 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int, Query(ge=1, le=MAX_ID)]


@dataclass
class Deps:
    """What the route modules need from :func:`aimd.platform.api.create_app`: the platform, the database
    session dependency, the caller, and ``need(permission)`` (the one check of :mod:`aimd.platform.rbac`)."""

    platform: Platform
    DB: Any
    Current: Any
    need: Callable[..., Any]


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


def blob_response(request: Request, blobs: BlobStore, sha: str, headers: dict[str, str] | None = None) -> Response:
    """A stored ``.npy`` blob as the answer: the stored zlib stream itself (``Content-Encoding: deflate``,
    no inflating on the server) when the client accepts deflate, the inflated and hash-checked bytes
    otherwise. ``X-Content-SHA256`` names the content either way."""
    extra = {**(headers or {}), "X-Content-SHA256": sha, "Vary": "Accept-Encoding"}
    if _accepts_deflate(request.headers.get("accept-encoding", "")):
        return Response(blobs.get_compressed(sha), media_type=NPY, headers={**extra, "Content-Encoding": "deflate"})
    return Response(blobs.get(sha), media_type=NPY, headers=extra)


MASK_HEADERS = {
    "X-Mask-SHA256": "the mask version's name: SHA-256 of its slab manifest (of the .npy for a whole blob)",
    "X-Content-SHA256": "SHA-256 of the .npy bytes, for a version stored whole (before slabs) only",
}


def mask_response(request: Request, blobs: MaskStore, sha: str, headers: dict[str, str] | None = None) -> Response:
    """A stored mask version as the answer: to a client that accepts deflate, one zlib stream made of the
    stored slab segments (nothing inflated on the server); otherwise the assembled, hash-checked ``.npy``.
    ``X-Mask-SHA256`` names the version."""
    extra = {**(headers or {}), "X-Mask-SHA256": sha}
    manifest = manifest_of(blobs, sha)
    if manifest is None:
        return blob_response(request, blobs, sha, extra)  # stored whole: X-Content-SHA256 names the .npy
    extra["Vary"] = "Accept-Encoding"
    if _accepts_deflate(request.headers.get("accept-encoding", "")):
        stream = manifest_stream(blobs, manifest)
        return Response(stream, media_type=NPY, headers={**extra, "Content-Encoding": "deflate"})
    return Response(mask_npy(blobs, sha, manifest), media_type=NPY, headers=extra)


def _accepts_deflate(accept_encoding: str) -> bool:
    for item in accept_encoding.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() in ("deflate", "*"):
            q = params.strip().removeprefix("q=")
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return False
    return False


def _status(err: AimdError) -> int:
    if isinstance(err, MaskError) or isinstance(getattr(err, "status", None), int):
        return int(getattr(err, "status"))  # noqa: B009
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
        "registration_max_mi": p.registration_max_mi,
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


async def save_draft_answer(
    platform: Platform, request: Request, user: User, task_id: int, if_match: str | None, **patch: Any
) -> JSONResponse:
    """A draft save (whole mask, or with ``at=``/``encoding=`` a delta box) in a worker thread, and its answer."""
    body = await request.body()
    if "at" not in patch:
        patch["content_type"] = request.headers.get("content-type")

    def work() -> Task:
        with platform.sessions() as db:
            task = workflow.get_task(db, user, task_id, kinds=_kinds(user))
            task = workflow.save_draft(db, platform.audit, platform.blobs, user, task, body, if_match, **patch)
            db.commit()
            return task

    task = await run_in_threadpool(work)
    return JSONResponse(
        {"task": task.id, "draft_version": task.draft_version, "mask_sha256": task.draft_sha256},
        headers={"ETag": f'"{task.draft_version}"'},
    )
