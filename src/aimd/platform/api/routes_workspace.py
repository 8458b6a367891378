"""Routes the annotation workspace needs beyond the task routes: delta saves of the drawing (001 §10.2.1).

``PATCH /api/v1/tasks/{id}/draft?z=&y=&x=`` takes the box of changed voxels as ``.npy`` (optionally
``Content-Encoding: gzip``) with ``If-Match: "<version>"``; the server applies it onto the stored draft
through the same checks as a whole mask (labels of the project's map, integer dtype, box inside the
image grid), stores the result as the next version (content hash, audit entry with the patch box) and
answers like ``PUT``. A stale ``If-Match`` is a 409, a missing one a 428.
"""

from typing import Annotated

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import JSONResponse

from aimd.platform.api.common import MAX_ID, NPY_BODY, Deps, save_draft_answer
from aimd.platform.rbac import Permission

__all__ = ["register"]

Offset = Annotated[int, Query(ge=0, le=MAX_ID)]


def register(app: FastAPI, d: Deps) -> None:
    platform, need = d.platform, d.need

    @app.patch("/api/v1/tasks/{task_id}/draft", tags=["tasks"], openapi_extra=NPY_BODY)
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
