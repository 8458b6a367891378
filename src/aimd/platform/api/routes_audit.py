"""Routes of submissions, diffs, window presets and the audit log (query, verify, archive)."""

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, Query, Request, Response

from aimd.imaging.windowing import WINDOW_PRESETS
from aimd.platform import projects, workflow
from aimd.platform.api import schemas
from aimd.platform.api.common import (
    MASK_HEADERS,
    Deps,
    Id,
    QueryId,
    _visible_submission,
    mask_response,
)
from aimd.platform.models import (
    Case,
    Submission,
)
from aimd.platform.rbac import Permission

__all__ = ["register"]


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, Current, need = d.platform, d.DB, d.Current, d.need
    audit, blobs = platform.audit, platform.blobs

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

    @app.get(
        "/api/v1/submissions/{submission_id}/mask",
        tags=["diff"],
        response_class=Response,
        responses=schemas.binary(
            "the submitted label mask",
            {"X-Reader": "the reader number", **MASK_HEADERS},
        ),
    )
    def submission_mask(submission_id: int, request: Request, user: need(Permission.DIFF_READ), db: DB) -> Response:
        sub = _visible_submission(db, user, submission_id)
        sha, reader = sub.mask_sha256, str(sub.reader)
        db.commit()  # read the blob outside the database transaction
        return mask_response(request, blobs, sha, {"X-Reader": reader})

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

    @app.get("/api/v1/audit/verify", tags=["audit"], response_model=schemas.AuditVerifyOut)
    def audit_verify(user: need(Permission.AUDIT_READ)) -> dict[str, Any]:
        bad = audit.verify()
        return {"ok": bad is None, "first_bad_index": bad, "entries": len(audit), "head_sha256": audit.head()}

    @app.post("/api/v1/audit/archive", tags=["audit"])
    def audit_archive(user: need(Permission.AUDIT_ARCHIVE)) -> dict[str, Any]:
        from aimd.platform.retention import archive_audit

        return archive_audit(platform, actor=user.username)
