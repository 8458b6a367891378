"""Routes of projects, members, cases, distribution, freezing, change requests, sampling and export."""

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, Path, Query

from aimd.platform import members, projects, workflow
from aimd.platform.api import schemas
from aimd.platform.api.common import (
    ChangeDecisionIn,
    ChangeIn,
    Deps,
    DistributeIn,
    Id,
    MembersIn,
    SampleIn,
    _project_out,
    _task_out,
)
from aimd.platform.exporting import export_project
from aimd.platform.models import (
    Case,
    ChangeRequest,
    Task,
)
from aimd.platform.rbac import Permission, Role

__all__ = ["register"]


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, need = d.platform, d.DB, d.need
    audit, blobs = platform.audit, platform.blobs

    @app.get("/api/v1/projects", tags=["projects"], response_model=list[schemas.ProjectOut])
    def list_projects(user: need(Permission.PROJECT_READ), db: DB) -> list[dict[str, Any]]:
        return [_project_out(p) for p in projects.visible_projects(db, user)]

    @app.post("/api/v1/projects", tags=["projects"], status_code=201, response_model=schemas.ProjectOut)
    def create_project(body: projects.ProjectCreate, user: need(Permission.PROJECT_CREATE), db: DB) -> dict[str, Any]:
        p = projects.create_project(db, audit, user, body)
        db.commit()
        return _project_out(p)

    @app.get("/api/v1/projects/{project_id}", tags=["projects"], response_model=schemas.ProjectOut)
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

    @app.post("/api/v1/projects/{project_id}/cases", tags=["cases"], status_code=201, response_model=schemas.CaseOut)
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

    @app.get("/api/v1/projects/{project_id}/cases", tags=["cases"], response_model=list[schemas.CaseOut])
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
