"""Platform tables (SQLAlchemy 2). Every schema change is a revision in :mod:`aimd.platform.migrations`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuthSession",
    "Base",
    "Case",
    "CaseSeries",
    "ChangeRequest",
    "Decision",
    "DestructionRecord",
    "IdempotencyRecord",
    "ModelRecord",
    "Project",
    "ProjectMember",
    "StudyImportJob",
    "Submission",
    "Task",
    "User",
    "utcnow",
]


def utcnow() -> dt.datetime:
    """Now, UTC, without microsecond noise in JSON."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of the platform tables (prefix ``pf_``)."""

    type_annotation_map = {dict[str, Any]: sa.JSON, list[Any]: sa.JSON}


class User(Base):
    __tablename__ = "pf_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(100), unique=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)  # of the last code accepted: each is good once
    clearance: Mapped[int] = mapped_column(default=1)
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuthSession(Base):
    __tablename__ = "pf_session"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_user.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    ended_at: Mapped[dt.datetime | None]
    end_reason: Mapped[str | None] = mapped_column(sa.String(40))


class Project(Base):
    __tablename__ = "pf_project"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    task_definition: Mapped[dict[str, Any]]
    taxonomy: Mapped[dict[str, Any]]
    label_map: Mapped[dict[str, Any]]
    template: Mapped[dict[str, Any]]
    dice_threshold: Mapped[float] = mapped_column(default=0.85)
    kappa_threshold: Mapped[float] = mapped_column(default=0.75)
    registration_max_mi: Mapped[float] = mapped_column(default=-0.1, server_default=sa.text("-0.1"))
    readers: Mapped[int] = mapped_column(default=2)
    sampling_ratio: Mapped[float] = mapped_column(default=0.1)
    classification: Mapped[str] = mapped_column(sa.String(20), default="internal")
    version: Mapped[int] = mapped_column(default=1)
    frozen: Mapped[bool] = mapped_column(default=False)
    frozen_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    members_only: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class ProjectMember(Base):
    """An account that may see and work in a members-only project (beyond its global role)."""

    __tablename__ = "pf_project_member"
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_project.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_user.id"), primary_key=True, index=True)
    added_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Case(Base):
    __tablename__ = "pf_case"
    __table_args__ = (sa.UniqueConstraint("project_id", "case_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_project.id", ondelete="CASCADE"), index=True)
    case_key: Mapped[str] = mapped_column(sa.String(200))
    image_sha256: Mapped[str] = mapped_column(sa.String(64))
    image: Mapped[dict[str, Any]]
    report_text: Mapped[str] = mapped_column(sa.Text, default="")
    fields: Mapped[dict[str, Any]]
    source: Mapped[dict[str, Any]]
    imported_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CaseSeries(Base):
    """A further series of a case (another modality or acquisition) with its stored registration onto the
    case's image, the annotated reference grid (001 §6.4.1)."""

    __tablename__ = "pf_case_series"
    __table_args__ = (sa.UniqueConstraint("case_id", "series_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_case.id", ondelete="CASCADE"), index=True)
    series_key: Mapped[str] = mapped_column(sa.String(200))
    image_sha256: Mapped[str] = mapped_column(sa.String(64))
    image: Mapped[dict[str, Any]]
    resampled_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    registration: Mapped[dict[str, Any]]
    imported_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class StudyImportJob(Base):
    """A DICOM study upload waiting for, running or finished its import (001 §10.1.1, §10.2.3): the archive
    is a file in the data folder's ``incoming/`` until the import is done or failed. ``active_case`` is
    ``"<project>:<case_key>"`` while queued or running and NULL after, so a unique constraint refuses a
    second submission of the same case while one is under way."""

    __tablename__ = "pf_study_import"
    __table_args__ = (sa.UniqueConstraint("user_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_project.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_user.id"))
    case_key: Mapped[str] = mapped_column(sa.String(200))
    active_case: Mapped[str | None] = mapped_column(sa.String(220), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    archive: Mapped[str] = mapped_column(sa.String(200))
    archive_sha256: Mapped[str] = mapped_column(sa.String(64))
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    spec: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class Task(Base):
    __tablename__ = "pf_task"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_project.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_case.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pf_user.id"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    reader: Mapped[int | None]
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pf_task.id"))
    draft_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    draft_version: Mapped[int] = mapped_column(default=0)
    draft_source: Mapped[str | None] = mapped_column(sa.String(200))
    prelabel_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    prelabel_source: Mapped[str | None] = mapped_column(sa.String(200))
    started_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Submission(Base):
    __tablename__ = "pf_submission"
    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_task.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_case.id", ondelete="CASCADE"), index=True)
    annotator: Mapped[str] = mapped_column(sa.String(100))
    reader: Mapped[int]
    mask_sha256: Mapped[str] = mapped_column(sa.String(64))
    project_version: Mapped[int]
    qc: Mapped[dict[str, Any]]
    correction: Mapped[dict[str, Any]]
    current: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Decision(Base):
    __tablename__ = "pf_decision"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_case.id", ondelete="CASCADE"), index=True)
    task_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pf_task.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    outcome: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    detail: Mapped[dict[str, Any]]
    decided_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ModelRecord(Base):
    __tablename__ = "pf_model"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    version: Mapped[str] = mapped_column(sa.String(50))
    path: Mapped[str] = mapped_column(sa.Text)
    file_sha256: Mapped[str] = mapped_column(sa.String(64))
    parameters: Mapped[dict[str, Any]]
    label_values: Mapped[dict[str, Any]]
    registered_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    __tablename__ = "pf_idempotency"
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_user.id"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    status: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ChangeRequest(Base):
    __tablename__ = "pf_change_request"
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_project.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("pf_case.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(sa.Text)
    requested_by: Mapped[str] = mapped_column(sa.String(100))
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    decided_by: Mapped[str | None] = mapped_column(sa.String(100))
    from_version: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DestructionRecord(Base):
    __tablename__ = "pf_destruction"
    id: Mapped[int] = mapped_column(primary_key=True)
    what: Mapped[dict[str, Any]]
    method: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    destroyed_by: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
