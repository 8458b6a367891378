"""Registration of a further series onto the annotated image of a case (001 §6.4.1).

A case's own image is the reference: the grid the annotators draw on. A further series (another
modality, or another acquisition of the study) is registered once, at import, and the record is stored
beside it:

* **frame of reference** — both images carry the same DICOM FrameOfReferenceUID, so their scanner
  coordinates agree: the transform is the identity in patient space (LPS mm) and each image's own
  origin, spacing and direction place its voxels;
* **rigid registration** — otherwise SimpleITK finds a rigid (Euler) transform by Mattes mutual
  information (multimodal-safe), started from the images' geometric centres.

Either way the series is resampled (linear) onto the reference grid through the transform, so the
workspace shows it voxel for voxel under the drawing. Quality is stored with the transform: the fraction
of the reference grid the series covers and the Mattes mutual information at the final transform
(SimpleITK's metric value, the negative MI: lower is better). The registration is stored as ``failed``,
with the reason and the measured value, and its series is listed but not shown, when

* it covers less than :data:`MIN_OVERLAP` of the reference, or
* its Mattes MI is worse (higher) than the project's ``registration_max_mi`` (default
  :data:`DEFAULT_MAX_MI`, chosen from the measurements in docs/platform.md: correctly registered pairs
  measured −0.21 to −1.36, unrelated content −0.0001 to −0.022).

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
from numpy.typing import NDArray

from aimd.imaging.resample import to_sitk
from aimd.imaging.volume import Volume

__all__ = ["DEFAULT_MAX_MI", "MIN_OVERLAP", "register_series"]

MIN_OVERLAP = 0.5
"""Least fraction of the reference grid a registered series must cover to be shown."""

DEFAULT_MAX_MI = -0.1
"""Default of a project's ``registration_max_mi``: a final Mattes MI above it fails the registration."""


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
    # the value alone needs no gradient images (three doubles a voxel of each image: 6× a float32 volume)
    reg.SetMetricUseFixedImageGradientFilter(False)
    reg.SetMetricUseMovingImageGradientFilter(False)
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


def _failed(record: dict[str, Any], message: str) -> tuple[dict[str, Any], None]:
    return record | {"status": "failed", "message": message}, None


def register_series(
    reference: Volume, series: Volume, *, same_frame: bool, max_mi: float = DEFAULT_MAX_MI
) -> tuple[dict[str, Any], NDArray[Any] | None]:
    """The registration record of ``series`` onto ``reference`` and the series resampled onto the
    reference grid in the reference's dtype (None when the registration failed).

    ``max_mi`` is the worst final Mattes MI accepted (the project's ``registration_max_mi``).
    """
    if series.metadata.get("projection") or (series.shape[0] == 1 and reference.shape[0] > 1):
        record = {"method": "none", "matrix_ref_to_series": None, "overlap": 0.0, "mattes_mi": None}
        return _failed(record, "a single-slice or projection image has no 3-D extent to register onto the volume")
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
    del ones, inside  # each image is freed as soon as it is used: a float copy of a CT is twice its size
    record: dict[str, Any] = {
        "method": method,
        "matrix_ref_to_series": _matrix(transform),
        "overlap": overlap,
        "max_mi": max_mi,
    }
    if overlap < MIN_OVERLAP:
        return _failed(
            record | {"mattes_mi": None},
            f"the registered series covers {overlap:.0%} of the annotated image (at least {MIN_OVERLAP:.0%} needed)",
        )
    mi = round(_mattes(fixed, moving, transform), 6)
    record["mattes_mi"] = mi
    if mi > max_mi:
        return _failed(
            record,
            f"the final Mattes mutual information {mi:.4f} is worse than the project's limit {max_mi:.4f} "
            "(the series' content does not match the annotated image)",
        )
    record |= {"status": "ok", "message": ""}
    low = float(np.min(series.array))
    resampled = sitk.Resample(moving, fixed, transform, sitk.sitkLinear, low, sitk.sitkFloat32)
    del fixed, moving
    moved = sitk.GetArrayFromImage(resampled)
    del resampled
    dtype = reference.array.dtype
    if np.issubdtype(dtype, np.integer):  # rounded and clipped in place: no further float copy of the grid
        info = np.iinfo(dtype)
        np.clip(np.rint(moved, out=moved), info.min, info.max, out=moved)
    return record, moved.astype(dtype, copy=False)
