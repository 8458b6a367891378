"""Several series per case and their stored registration onto the annotated image (001 §6.4.1).

A case's own image is the reference: the grid the annotators draw on. A further series (another
modality, or another acquisition of the study) is imported with :func:`import_series`, which computes
its registration once and stores it beside the series:

* **frame of reference** — both images carry the same DICOM FrameOfReferenceUID, so their scanner
  coordinates agree: the transform is the identity in patient space (LPS mm) and each image's own
  origin, spacing and direction place its voxels;
* **rigid registration** — otherwise SimpleITK finds a rigid (Euler) transform by Mattes mutual
  information (multimodal-safe), started from the images' geometric centres.

Either way the series is resampled (linear) onto the reference grid through the transform and that copy
is stored, so the workspace shows it voxel for voxel under the drawing. Quality is stored with the
transform: the fraction of the reference grid the series covers and the Mattes mutual information at
the final transform (lower is better). A registration covering less than :data:`MIN_OVERLAP` of the
reference is stored as ``failed`` with the reason; its series is listed but not shown.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> ref = Volume(np.zeros((4, 8, 8), np.int16), spacing=(1.0, 1.0, 2.0))
>>> far = Volume(np.ones((4, 8, 8), np.int16), spacing=(1.0, 1.0, 2.0), origin=(500.0, 0.0, 0.0))
>>> reg, resampled = register_series(ref, far, same_frame=True)
>>> reg["status"], reg["overlap"], resampled is None
('failed', 0.0, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk
import sqlalchemy as sa
from numpy.typing import NDArray
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from aimd.imaging.resample import to_sitk
from aimd.imaging.volume import Volume
from aimd.platform.masks import to_npy
from aimd.platform.models import Case, CaseSeries, Project, User
from aimd.platform.projects import (
    ConflictError,
    IdentifiersFoundError,
    NotFoundError,
    identifier_findings,
    read_image_b64,
    require_unfrozen,
    store_image,
)
from aimd.platform.workflow.drafts import case_volume
from aimd.store import AuditLog, BlobStore

__all__ = ["MIN_OVERLAP", "SeriesImport", "import_series", "register_series", "series_out"]

MIN_OVERLAP = 0.5
"""Least fraction of the reference grid a registered series must cover to be shown."""


class SeriesImport(BaseModel):
    """A further series of an imported case (NIfTI, base64)."""

    series_key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    image_nifti_b64: str = Field(min_length=1)
    description: str = Field("", max_length=500)
    frame_of_reference_uid: str | None = Field(
        None, max_length=64, description="DICOM FrameOfReferenceUID; equal to the case's → aligned by geometry"
    )


def _matrix(transform: sitk.Transform) -> list[list[float]]:
    """4×4 homogeneous matrix of a rigid transform (reference LPS mm → series LPS mm)."""
    out = np.eye(4)
    if transform.GetName() == "CompositeTransform":
        transform = sitk.CompositeTransform(transform).GetBackTransform()
    rigid = sitk.Euler3DTransform(transform)
    a, c = np.asarray(rigid.GetMatrix()).reshape(3, 3), np.asarray(rigid.GetCenter())
    out[:3, :3] = a
    out[:3, 3] = np.asarray(rigid.GetTranslation()) + c - a @ c
    return out.round(6).tolist()


def _mattes(fixed: sitk.Image, moving: sitk.Image, transform: sitk.Transform) -> float:
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetInitialTransform(transform, inPlace=False)
    return float(reg.MetricEvaluate(fixed, moving))


def _rigid(fixed: sitk.Image, moving: sitk.Image) -> sitk.Transform:
    start = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.GEOMETRY
    )
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(0.25, seed=7)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-3, numberOfIterations=200, gradientMagnitudeTolerance=1e-6
    )
    reg.SetOptimizerScalesFromPhysicalShift()
    reg.SetShrinkFactorsPerLevel([2, 1])
    reg.SetSmoothingSigmasPerLevel([1.0, 0.0])
    reg.SetInitialTransform(start, inPlace=False)
    return reg.Execute(fixed, moving)


def register_series(
    reference: Volume, series: Volume, *, same_frame: bool
) -> tuple[dict[str, Any], NDArray[Any] | None]:
    """The registration record of ``series`` onto ``reference`` and the series resampled onto the
    reference grid in the reference's dtype (None when the registration failed)."""
    fixed = sitk.Cast(to_sitk(reference), sitk.sitkFloat32)
    moving = sitk.Cast(to_sitk(series), sitk.sitkFloat32)
    if same_frame:
        method, transform = "frame_of_reference", sitk.Euler3DTransform()  # the identity
    else:
        method, transform = "rigid_mattes_mi", _rigid(fixed, moving)
    ones = sitk.Image(moving.GetSize(), sitk.sitkUInt8) + 1
    ones.CopyInformation(moving)
    inside = sitk.Resample(ones, fixed, transform, sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    overlap = float(sitk.GetArrayViewFromImage(inside).mean())
    record: dict[str, Any] = {"method": method, "matrix_ref_to_series": _matrix(transform), "overlap": overlap}
    if overlap < MIN_OVERLAP:
        record |= {
            "status": "failed",
            "mattes_mi": None,
            "message": f"the registered series covers {overlap:.0%} of the annotated image "
            f"(at least {MIN_OVERLAP:.0%} needed)",
        }
        return record, None
    record |= {"status": "ok", "mattes_mi": round(_mattes(fixed, moving, transform), 6), "message": ""}
    low = float(np.min(series.array))
    moved = sitk.GetArrayFromImage(sitk.Resample(moving, fixed, transform, sitk.sitkLinear, low, sitk.sitkFloat32))
    dtype = reference.array.dtype
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        moved = np.clip(np.rint(moved), info.min, info.max)
    return record, moved.astype(dtype)


def import_series(
    db: Session, audit: AuditLog, blobs: BlobStore, actor: User, project: Project, case: Case, spec: SeriesImport
) -> CaseSeries:
    """Import a further series of ``case``: identifier check, registration onto the case's image, stored."""
    require_unfrozen(project)
    series, raw = read_image_b64(spec.image_nifti_b64)
    hits = identifier_findings(spec.description, "description") + identifier_findings(
        series.modality or "", "image header"
    )
    if hits:
        audit.append(actor.username, "import.refused", f"case:{case.id}", {"series": spec.series_key}, connection=db)
        raise IdentifiersFoundError(hits)
    if db.scalar(sa.select(CaseSeries).where(CaseSeries.case_id == case.id, CaseSeries.series_key == spec.series_key)):
        raise ConflictError(
            f"series {spec.series_key!r} of case {case.case_key!r} is already imported",
            where="series_key",
            hint="use a new series key",
        )
    ref_uid = case.image.get("frame_of_reference_uid")
    same = bool(spec.frame_of_reference_uid and ref_uid and spec.frame_of_reference_uid == ref_uid)
    registration, resampled = register_series(case_volume(blobs, case), series, same_frame=same)
    sha, image = store_image(blobs, series, raw)
    image |= {"description": spec.description, "frame_of_reference_uid": spec.frame_of_reference_uid}
    row = CaseSeries(
        case_id=case.id,
        series_key=spec.series_key,
        image_sha256=sha,
        image=image,
        resampled_sha256=blobs.put(to_npy(resampled)) if resampled is not None else None,
        registration=registration,
        imported_by=actor.username,
    )
    db.add(row)
    db.flush()
    audit.append(
        actor.username,
        "import.series",
        f"case:{case.id}",
        {"series": spec.series_key, "image_sha256": sha, "registration": registration},
        connection=db,
    )
    return row


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
