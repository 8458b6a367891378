"""Answer shapes the OpenAPI document publishes for every route: JSON bodies, binary masks and images, and
the error body of each refusal.

They describe the answers; they are not used to validate them at run time (routes answer dicts encoded on
the event loop, see :class:`aimd.platform.api.app._EncodedInLoop`). The Schemathesis test checks that
the answers match these shapes. Extra fields are allowed, so a later field does not break older clients.

Example
-------
>>> sorted(ERRORS)
[401, 403, 404, 409, 422]
>>> binary("a mask")[200]["content"]["application/octet-stream"]["schema"]
{'type': 'string', 'format': 'binary'}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "ERRORS",
    "DraftSavedOut",
    "ErrorOut",
    "LoginOut",
    "NewUserOut",
    "ProjectOut",
    "RequestInvalidOut",
    "SubmitOut",
    "TaskDetailOut",
    "TaskOut",
    "UserOut",
    "binary",
    "errors",
]

NPY = "application/octet-stream"


class ErrorOut(BaseModel):
    """A refusal: what went wrong, where, and how to fix it."""

    error: str = Field(description="the kind of error, e.g. InvalidInputError, ConflictError")
    message: str
    where: str | None = Field(None, description="the field, header or part of the request at fault")
    hint: str | None = Field(None, description="how to fix it")
    findings: list[Any] | None = Field(None, description="level-1 QC findings of a refused submission")
    hits: list[Any] | None = Field(None, description="identifiers found by the de-identification scan")


class RequestInvalidOut(BaseModel):
    """A request that does not match the route's parameters or body schema."""

    detail: list[dict[str, Any]]


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    clearance: str
    disabled: bool
    mfa: bool


class NewUserOut(BaseModel):
    """The account and its one-time secrets (shown once)."""

    username: str
    role: str
    password: str | None
    totp_secret: str | None
    totp_uri: str | None


class LoginOut(BaseModel):
    token: str = Field(description="bearer token, shown once")
    expires_at: str
    user: UserOut
    ended_other_sessions: int = Field(description="earlier sessions of this account ended by this login")


class OkOut(BaseModel):
    ok: bool


class LiveOut(BaseModel):
    live: bool


class ReadyOut(BaseModel):
    ready: bool
    reason: str | None = None


class LabelOut(BaseModel):
    value: int
    code: str
    name_en: str
    name_zh: str
    category: str
    parent: str | None
    attributes: list[dict[str, Any]]


class ProjectOut(BaseModel):
    id: int
    name: str
    task_definition: dict[str, Any]
    taxonomy: Any
    label_map: dict[str, str]
    labels: list[LabelOut]
    readers: int
    sampling_ratio: float
    dice_threshold: float
    kappa_threshold: float
    registration_max_mi: float
    classification: int | str
    version: int
    frozen: bool
    members_only: bool


class CaseOut(BaseModel):
    id: int
    case_key: str
    image: dict[str, Any] = Field(description="the image grid: shape (z, y, x), spacing, origin, direction, modality")
    report_text: str | None = None
    fields: dict[str, Any] | None = None


class TaskOut(BaseModel):
    id: int
    project: int
    case: int
    kind: str = Field(description="annotate, rework, review, arbitrate or qc_sample")
    status: str
    assignee: int | None
    reader: int | None
    parent: int | None
    draft_version: int
    draft_source: str | None
    prelabel_source: str | None


class TaskDetailOut(TaskOut):
    case_key: str
    image: dict[str, Any]
    report_text: str | None
    fields: dict[str, Any] | None


class DraftSavedOut(BaseModel):
    task: int
    draft_version: int = Field(description="send it as If-Match with the next save")
    mask_sha256: str


class PrelabelOut(BaseModel):
    task: int
    draft_version: int
    source: str | None


class SubmitOut(BaseModel):
    submission: int
    task: int
    qc: dict[str, Any]
    correction: dict[str, Any]
    routed: dict[str, Any]


class DecisionOut(BaseModel):
    task: int
    outcome: str
    rework_tasks: list[int]


class ModelOut(BaseModel):
    id: int
    name: str
    version: str
    file_sha256: str | None


class MarksOut(BaseModel):
    task: int
    version: int
    objects: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    links: dict[str, list[str]]


class AuditVerifyOut(BaseModel):
    ok: bool
    first_bad_index: int | None
    entries: int
    head_sha256: str | None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "not logged in, or the session ended"},
    403: {"model": ErrorOut, "description": "the role may not do this"},
    404: {"model": ErrorOut, "description": "no such item visible to this account"},
    409: {"model": ErrorOut, "description": "a conflict: stale version, frozen project, closed task"},
    422: {"model": ErrorOut | RequestInvalidOut, "description": "bad input, named"},
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Further refusals of one route, each with the error body."""
    text = {
        400: "the body cannot be read (truncated, not .npy, broken compression)",
        413: "the body is larger than the route allows",
        415: "a Content-Encoding the route does not accept",
        428: "a required precondition header is missing",
        502: "the model service failed",
        503: "not ready",
    }
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}


def binary(what: str, headers: dict[str, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """A 200 answer of ``.npy`` bytes (``Content-Encoding: deflate`` when the client accepts it)."""
    out: dict[str, Any] = {
        "description": f"{what} as .npy bytes",
        "content": {NPY: {"schema": {"type": "string", "format": "binary"}}},
    }
    if headers:
        out["headers"] = {name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()}
    return {200: out}
