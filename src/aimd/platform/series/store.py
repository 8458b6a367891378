"""Further series of a case: registered onto the case's image at import and stored with the registration
record (:mod:`aimd.platform.series.registration`), listed and fetched by the workspace (001 §6.4.1).

Example
-------
>>> SeriesImport(series_key="t2", image_nifti_b64="AAAA").frame_of_reference_uid is None
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from aimd.imaging.volume import Volume
from aimd.platform.errors import ConflictError, NotFoundError, require_unfrozen
from aimd.platform.models import Case, CaseSeries, Project, User
from aimd.platform.series.intake import (
    identifier_findings,
    put_npy,
    read_image_b64,
    refuse_identifiers,
    store_image,
)
from aimd.platform.series.registration import register_series
from aimd.store import AuditLog, BlobStore

__all__ = ["SeriesImport", "add_series", "get_series", "import_series", "series_blobs", "series_out"]


class SeriesImport(BaseModel):
    """A further series of an imported case (NIfTI, base64)."""

    series_key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    image_nifti_b64: str = Field(min_length=1)
    description: str = Field("", max_length=500)
    frame_of_reference_uid: str | None = Field(
        None, max_length=64, description="DICOM FrameOfReferenceUID; equal to the case's → aligned by geometry"
    )


def _require_new(db: Session, case: Case, series_key: str) -> None:
    if db.scalar(sa.select(CaseSeries).where(CaseSeries.case_id == case.id, CaseSeries.series_key == series_key)):
        raise ConflictError(
            f"series {series_key!r} of case {case.case_key!r} is already imported",
            where="series_key",
            hint="use a new series key",
        )


def add_series(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    actor: User,
    project: Project,
    case: Case,
    reference: Volume,
    series: Volume,
    raw: bytes | Path,
    *,
    series_key: str,
    description: str = "",
    frame_of_reference_uid: str | None = None,
    image_extra: dict[str, Any] | None = None,
    registered: tuple[dict[str, Any], Any] | None = None,
) -> CaseSeries:
    """Register a checked ``series`` (NIfTI file ``raw``: bytes or a path) onto ``reference`` (the case's
    image), store it.

    ``registered`` is the outcome of :func:`register_series` when the caller ran it before the
    transaction (with the same frame-of-reference rule and the project's MI limit)."""
    _require_new(db, case, series_key)
    ref_uid = case.image.get("frame_of_reference_uid")
    same = bool(frame_of_reference_uid and ref_uid and frame_of_reference_uid == ref_uid)
    registration, resampled = registered or register_series(
        reference, series, same_frame=same, max_mi=project.registration_max_mi
    )
    sha, image = store_image(blobs, series, raw)
    image |= {"description": description, "frame_of_reference_uid": frame_of_reference_uid}
    image |= image_extra or {}
    row = CaseSeries(
        case_id=case.id,
        series_key=series_key,
        image_sha256=sha,
        image=image,
        resampled_sha256=put_npy(blobs, resampled) if resampled is not None else None,
        registration=registration,
        imported_by=actor.username,
    )
    db.add(row)
    db.flush()
    audit.append(
        actor.username,
        "import.series",
        f"case:{case.id}",
        {"series": series_key, "image_sha256": sha, "registration": registration},
        connection=db,
    )
    return row


def import_series(
    db: Session, audit: AuditLog, blobs: BlobStore, actor: User, project: Project, case: Case, spec: SeriesImport
) -> CaseSeries:
    """Import a further series of ``case``: identifier check, registration onto the case's image, stored."""
    from aimd.platform.workflow.drafts import case_volume

    require_unfrozen(project)
    series, raw = read_image_b64(spec.image_nifti_b64)
    hits = identifier_findings(spec.description, "description")
    hits += identifier_findings(series.modality or "", "image header")
    refuse_identifiers(db, audit, actor, f"case:{case.id}", {"series": spec.series_key}, hits)
    _require_new(db, case, spec.series_key)
    return add_series(
        db,
        audit,
        blobs,
        actor,
        project,
        case,
        case_volume(blobs, case),
        series,
        raw,
        series_key=spec.series_key,
        description=spec.description,
        frame_of_reference_uid=spec.frame_of_reference_uid,
    )


def series_out(row: CaseSeries) -> dict[str, Any]:
    """A series as the API lists it."""
    return {
        "id": row.id,
        "series_key": row.series_key,
        "modality": row.image.get("modality"),
        "description": row.image.get("description", ""),
        "image": row.image,
        "registration": row.registration,
    }


def get_series(db: Session, case: Case, series_id: int) -> CaseSeries:
    """A series of ``case`` (404 otherwise)."""
    row = db.get(CaseSeries, series_id)
    if row is None or row.case_id != case.id:
        raise NotFoundError(
            f"case {case.case_key!r} has no series {series_id}", where="series", hint="list the task's series"
        )
    return row


def series_blobs(db: Session, case_ids: list[int] | None) -> set[str | None]:
    """Blobs of further series (voxels, NIfTI file, resampled copy) of ``case_ids`` (all with None)."""
    query = sa.select(CaseSeries.image_sha256, CaseSeries.resampled_sha256, CaseSeries.image)
    if case_ids is not None:
        query = query.where(CaseSeries.case_id.in_(case_ids))
    return {sha for a, b, image in db.execute(query) for sha in (a, b, (image or {}).get("nifti_sha256"))}
