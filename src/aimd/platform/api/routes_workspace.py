"""Routes the annotation workspace needs beyond the task routes: delta saves of the drawing (001 §10.2.1)
and the series of a case with their stored registration (001 §6.4.1).

``PATCH /api/v1/tasks/{id}/draft?z=&y=&x=`` takes the box of changed voxels as ``.npy`` (optionally
``Content-Encoding: gzip``) with ``If-Match: "<version>"``; the server applies it onto the stored draft
through the same checks as a whole mask (labels of the project's map, integer dtype, box inside the
image grid), stores the result as the next version (content hash, audit entry with the patch box) and
answers like ``PUT``. A stale ``If-Match`` is a 409, a missing one a 428.

``POST /api/v1/projects/{p}/cases/{c}/series`` imports a further series (NIfTI, base64; optional
FrameOfReferenceUID) and registers it onto the case's image (:mod:`aimd.platform.series`);
``GET /api/v1/tasks/{id}/series`` lists the task's reference image and series with their registration;
``GET /api/v1/tasks/{id}/series/{s}/image`` gives series ``s`` resampled onto the reference grid (.npy),
or 409 naming the reason when its registration failed.

``GET /api/v1/tasks/{id}/overview`` gives a block-averaged copy of the case image (at most 0.5 Mi voxels,
:mod:`aimd.platform.overview`; ``X-Overview-Factors: fz,fy,fx``) for the first view of large volumes.
"""

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from aimd.platform import projects, series, workflow
from aimd.platform.api import schemas
from aimd.platform.api.common import MAX_ID, NPY, NPY_BODY, Deps, Id, blob_response, save_draft_answer
from aimd.platform.masks import to_npy
from aimd.platform.models import Case, CaseSeries, User
from aimd.platform.overview import overview
from aimd.platform.rbac import Permission

__all__ = ["register"]

_OVERVIEWS: dict[str, tuple[bytes, str]] = {}  # image SHA-256 → (.npy, factors); a few recent ones

Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


def _task_case(db: Session, user: User, task_id: int) -> Case:
    """The case of a task the user may see (404 otherwise)."""
    case = db.get(Case, workflow.get_task(db, user, task_id).case_id)
    assert case is not None
    return case


def register(app: FastAPI, d: Deps) -> None:
    platform, need, DB, Current = d.platform, d.need, d.DB, d.Current

    @app.patch(
        "/api/v1/tasks/{task_id}/draft",
        tags=["tasks"],
        response_model=schemas.DraftSavedOut,
        responses=schemas.errors(400, 428),
        openapi_extra=NPY_BODY,
    )
    async def patch_draft(
        task_id: int,
        request: Request,
        user: need(Permission.TASK_ANNOTATE, Permission.TASK_ARBITRATE),
        z: Offset,
        y: Offset,
        x: Offset,
        if_match: Annotated[str | None, Header()] = None,
        content_encoding: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        return await save_draft_answer(
            platform, request, user, task_id, if_match, at=(z, y, x), encoding=content_encoding
        )

    @app.post("/api/v1/projects/{project_id}/cases/{case_id}/series", tags=["cases"], status_code=201)
    def import_series(
        project_id: Id, case_id: Id, body: series.SeriesImport, user: need(Permission.CASE_IMPORT), db: DB
    ) -> dict[str, Any]:
        project = projects.get_project(db, user, project_id)
        case = db.get(Case, case_id)
        if case is None or case.project_id != project.id:
            raise projects.NotFoundError(
                f"project {project_id} has no case {case_id}", where="case", hint="list the project's cases"
            )
        try:
            row = series.import_series(db, platform.audit, platform.blobs, user, project, case, body)
        except projects.IdentifiersFoundError:
            db.commit()  # the refusal is audited
            raise
        db.commit()
        return series.series_out(row)

    @app.get("/api/v1/tasks/{task_id}/series", tags=["tasks"])
    def list_series(task_id: Id, who: Current, db: DB) -> dict[str, Any]:
        case = _task_case(db, who[0], task_id)
        rows = db.scalars(sa.select(CaseSeries).where(CaseSeries.case_id == case.id).order_by(CaseSeries.id))
        return {
            "reference": {"case_key": case.case_key, "image": case.image},
            "series": [series.series_out(r) for r in rows],
        }

    @app.get(
        "/api/v1/tasks/{task_id}/series/{series_id}/image",
        tags=["tasks"],
        response_class=Response,
        responses=schemas.binary(
            "the series resampled onto the annotated grid (z, y, x)",
            {"X-Series": "the series key", "X-Content-SHA256": "SHA-256 of the .npy bytes"},
        ),
    )
    def series_image(task_id: Id, series_id: Id, request: Request, who: Current, db: DB) -> Response:
        case = _task_case(db, who[0], task_id)
        row = series.get_series(db, case, series_id)
        reg = row.registration
        if reg.get("status") != "ok" or row.resampled_sha256 is None:
            raise projects.ConflictError(
                f"the registration of series {row.series_key!r} onto the annotated image failed: "
                f"{reg.get('message') or 'no registration stored'}",
                where=f"series {row.series_key}",
                hint="re-import the series with the FrameOfReferenceUID it shares with the case, "
                "or an image that covers the annotated region",
            )
        sha = row.resampled_sha256
        db.commit()  # read the blob outside the database transaction
        return blob_response(request, platform.blobs, sha, {"X-Series": row.series_key})

    @app.get(
        "/api/v1/tasks/{task_id}/overview",
        tags=["tasks"],
        response_class=Response,
        responses=schemas.binary(
            "a block-averaged copy of the case image (z, y, x), at most 0.5 Mi voxels",
            {"X-Overview-Factors": "block factors fz,fy,fx"},
        ),
    )
    def task_overview(task_id: Id, who: Current, db: DB) -> Response:
        case = _task_case(db, who[0], task_id)
        db.commit()  # read the blob outside the database transaction
        if case.image_sha256 not in _OVERVIEWS:
            small, factors = overview(workflow.case_volume(platform.blobs, case).array)
            while len(_OVERVIEWS) >= 8:
                _OVERVIEWS.pop(next(iter(_OVERVIEWS)))
            _OVERVIEWS[case.image_sha256] = (to_npy(small), ",".join(map(str, factors)))
        body, factors = _OVERVIEWS[case.image_sha256]
        return Response(body, media_type=NPY, headers={"X-Overview-Factors": factors})
