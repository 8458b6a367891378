"""Tasks an account may see, case images and masks, and autosaved drafts with versions (001 §10.2.2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from aimd.core.errors import InvalidInputError, PermissionDeniedError
from aimd.imaging.volume import Volume
from aimd.platform.mask_nifti import is_nifti_upload, nifti_mask_npy
from aimd.platform.mask_store import MaskStore, load_mask, patch_version, store_npy
from aimd.platform.masks import decode_body, read_mask_upload
from aimd.platform.models import Case, Project, Task, User, utcnow
from aimd.platform.projects import ConflictError, NotFoundError, require_unfrozen
from aimd.platform.rbac import Role, visible_project_ids
from aimd.store import AuditLog, BlobStore

__all__ = [
    "PreconditionRequiredError",
    "advance_draft",
    "case_mask",
    "case_volume",
    "get_task",
    "save_draft",
    "visible_tasks",
]


_ROLE_KINDS = {
    Role.ANNOTATOR: ("annotate", "rework"),
    Role.REVIEWER: ("review",),
    Role.ARBITER: ("arbitrate",),
    Role.QC: ("qc_sample",),
}


def visible_tasks(db: Session, user: User, *, project_id: int | None = None, status: str | None = None) -> list[Task]:
    """Tasks the user may see: their own (annotator, reviewer, arbiter, QC) or all (admin), in visible projects."""
    query = sa.select(Task).where(Task.project_id.in_(visible_project_ids(user))).order_by(Task.id)
    if user.role != Role.ADMIN:
        query = query.where(Task.assignee_id == user.id)
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    if status is not None:
        query = query.where(Task.status == status)
    return list(db.scalars(query))


def get_task(db: Session, user: User, task_id: int, *, kinds: tuple[str, ...] | None = None) -> Task:
    """A task the user may see (404 otherwise) and, with ``kinds``, may work on (403 otherwise)."""
    task = db.get(Task, task_id)
    if (
        task is None
        or (user.role != Role.ADMIN and task.assignee_id != user.id)
        or db.scalar(visible_project_ids(user).where(Project.id == task.project_id)) is None
    ):
        raise NotFoundError(f"no task {task_id}", where="task", hint="list /api/v1/tasks")
    if kinds is not None and (task.kind not in kinds or task.assignee_id != user.id):
        raise PermissionDeniedError(
            f"task {task_id} is a {task.kind} task of another role or person",
            where="task",
            hint="work on your own tasks",
        )
    return task


def case_volume(blobs: BlobStore, case: Case) -> Volume:
    """The case image as a :class:`Volume`."""
    import io

    arr = np.load(io.BytesIO(blobs.get(case.image_sha256)), allow_pickle=False)
    img = case.image
    return Volume(
        arr,
        spacing=tuple(img["spacing"]),
        origin=tuple(img["origin"]),
        direction=np.asarray(img["direction"]),
        modality=img.get("modality"),
    )


def case_mask(blobs: MaskStore, sha: str) -> NDArray[Any]:
    """A stored mask version (slabs or a whole blob) as an array."""
    return load_mask(blobs, sha)


def _allowed(project: Project) -> set[int]:
    return {int(k) for k in project.label_map}


def save_draft(
    db: Session,
    audit: AuditLog,
    blobs: MaskStore,
    user: User,
    task: Task,
    body: bytes,
    if_match: str | None,
    *,
    source: str = "manual",
    at: tuple[int, int, int] | None = None,
    encoding: str | None = None,
    declared_sha256: str | None = None,
    content_type: str | None = None,
) -> Task:
    """Autosave: store the mask and bump the draft version; a stale ``If-Match`` is a 409 (no lost update).
    The version is stored as slabs and a manifest (:mod:`aimd.platform.mask_store`); its name is the
    manifest's SHA-256.

    With ``at`` (z, y, x) the body is a delta save: the box of changed voxels (``encoding`` gzip or none)
    applied onto the draft named by ``If-Match`` (an empty mask before the first save), checked like a
    whole mask (:mod:`aimd.platform.mask_patch`). A whole mask may arrive compressed (``encoding`` gzip,
    deflate or zstd), with ``declared_sha256``, the ``X-Content-SHA256`` of the ``.npy`` sent (checked), and
    as a NIfTI file on the case's grid (``content_type`` application/x-nifti or recognised by its bytes;
    :mod:`aimd.platform.mask_nifti`)."""
    image, allowed, version = _open_for_save(db, task, if_match)
    shape = list(image["shape"])
    base_sha = task.draft_sha256
    db.commit()  # end the read: a large upload is parsed and stored without holding the database
    details: dict[str, Any] = {"source": source}
    if at is None:
        limit = 65536 + 8 * int(np.prod(shape))  # a NIfTI header and int64 voxels at most
        raw = decode_body(body, encoding, limit=limit)
        if is_nifti_upload(raw, content_type):
            raw = nifti_mask_npy(raw, image, limit=limit, declared_sha256=declared_sha256)
            declared_sha256 = None
            details["format"] = "nifti"
        upload = read_mask_upload(raw, shape=shape, allowed=allowed, declared_sha256=declared_sha256, digest=False)
        sha = store_npy(blobs, upload.npy)  # slabs already stored (unchanged ones) are only touched
    else:
        from aimd.platform.mask_patch import read_patch

        offset, patch = read_patch(body, at, shape, allowed=allowed, encoding=encoding)
        details["patch"] = {"offset_zyx": list(at), "base_sha256": base_sha, "patch_bytes": len(body)}
        sha = patch_version(blobs, base_sha, shape, patch, offset)  # reads and writes the touched slabs only
    if not advance_draft(db, task, version, sha, source):
        raise ConflictError("stale draft: another save won", where="If-Match", hint="reload the draft")
    audit.append(
        user.username,
        "save",
        f"task:{task.id}",
        {"version": task.draft_version, "mask_sha256": sha, **details},
        connection=db,
    )
    return task


def _open_for_save(db: Session, task: Task, if_match: str | None) -> tuple[dict[str, Any], set[int], int]:
    """Checks before a draft save (project not frozen, task open, ``If-Match`` equal to the draft version);
    the case image record (shape z, y, x and geometry), the allowed label values and the version the save
    starts from."""
    project = db.get(Project, task.project_id)
    case = db.get(Case, task.case_id)
    assert project is not None and case is not None
    require_unfrozen(project)
    if task.status != "open":
        raise ConflictError(f"task {task.id} is {task.status}", where="task", hint="drafts go to open tasks")
    if if_match is None:
        raise PreconditionRequiredError()
    expected = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if expected != str(task.draft_version):
        raise ConflictError(
            f"stale draft: you sent version {expected}, the server has {task.draft_version}",
            where="If-Match",
            hint="reload the draft, merge your edits and save again",
        )
    return dict(case.image), _allowed(project), task.draft_version


def advance_draft(db: Session, task: Task, version: int, sha: str, source: str, *, prelabel: bool = False) -> bool:
    """Make ``sha`` the task's draft if its version is still ``version`` (checked inside the UPDATE, so two
    concurrent writers cannot both win); with ``prelabel`` it is also the model's pre-label. False when
    another write won."""
    now = utcnow()
    values: dict[str, Any] = {"draft_sha256": sha, "draft_version": version + 1, "draft_source": source}
    if prelabel:
        values |= {"prelabel_sha256": sha, "prelabel_source": source}
    result = db.execute(
        sa.update(Task)
        .where(Task.id == task.id, Task.draft_version == version, Task.status == "open")
        .values(**values, updated_at=now, started_at=sa.func.coalesce(Task.started_at, now))
    )
    if result.rowcount != 1:
        return False
    db.refresh(task)
    return True


class PreconditionRequiredError(InvalidInputError):
    """A draft save without ``If-Match`` (HTTP 428)."""

    def __init__(self) -> None:
        super().__init__(
            "saving a draft needs the If-Match header with the draft version you loaded",
            where="If-Match",
            hint='send If-Match: "<version>" (0 for the first save)',
        )
