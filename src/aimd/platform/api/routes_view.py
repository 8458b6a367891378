"""Routes of the workspace's first view of a large image (001 §10.2.1).

``GET /api/v1/tasks/{id}/slice?z=`` gives axial slice ``z`` of the task's case image at full resolution
(``.npy`` of shape (1, y, x), the image's voxel type; :func:`aimd.platform.overview.axial_slice`): the
workspace draws it while the whole volume downloads. Whoever may see the task may read its slices; a
slice outside the image is refused naming the valid range.
"""

from typing import Annotated

from fastapi import FastAPI, Query, Response

from aimd.platform.api import schemas
from aimd.platform.api.common import MAX_ID, NPY, Deps, Id
from aimd.platform.api.routes_workspace import _task_case
from aimd.platform.overview import axial_slice

__all__ = ["register"]


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, Current = d.platform, d.DB, d.Current

    @app.get(
        "/api/v1/tasks/{task_id}/slice",
        tags=["tasks"],
        response_class=Response,
        responses=schemas.binary(
            "axial slice z of the case image at full resolution, shape (1, y, x)", {"X-Slice": "z"}
        ),
    )
    def task_slice(task_id: Id, z: Annotated[int, Query(ge=0, le=MAX_ID)], who: Current, db: DB) -> Response:
        case = _task_case(db, who[0], task_id)
        sha = case.image_sha256
        db.commit()  # read the blob outside the database transaction
        body = axial_slice(platform.blobs.get_compressed(sha), z)
        return Response(body, media_type=NPY, headers={"X-Slice": str(z)})
