"""Resampling through SimpleITK, recording original and new spacing (001 §7.2 c).

Images are interpolated linearly (float32 out), label maps with nearest neighbour (dtype kept).
Every resampling appends ``{"original_spacing", "new_spacing", "original_shape", "new_shape",
"interpolator"}`` to ``metadata["resampling"]``. Per-slice DICOM metadata (``slices``,
``slice_positions``, ``files``) describe the old grid and are dropped from the result.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.zeros((10, 8, 8), np.int16), spacing=(1.0, 1.0, 2.0))
>>> out = resample_to_spacing(vol, (1.0, 1.0, 1.0))
>>> out.shape, out.metadata["resampling"][-1]["original_spacing"]
((20, 8, 8), [1.0, 1.0, 2.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import SimpleITK as sitk

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.volume import Volume

_GRID_KEYS = ("slices", "slice_positions", "files", "geometry_missing", "orientation")


def to_sitk(volume: Volume) -> sitk.Image:
    """A SimpleITK image with the volume's voxels and LPS geometry.

    Booleans become uint8 (SimpleITK has no boolean pixel type).

    Example
    -------
    >>> import numpy as np
    >>> img = to_sitk(Volume(np.zeros((2, 3, 4), np.float32), spacing=(0.5, 0.6, 2.0)))
    >>> img.GetSize(), img.GetSpacing()
    ((4, 3, 2), (0.5, 0.6, 2.0))
    """
    array = volume.array.astype(np.uint8) if volume.array.dtype == np.bool_ else volume.array
    image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=False)
    image.SetSpacing([float(s) for s in volume.spacing])
    image.SetOrigin([float(o) for o in volume.origin])
    image.SetDirection([float(d) for d in volume.direction.ravel()])
    return image


def from_sitk(image: sitk.Image, *, modality: str | None = None, metadata: dict[str, Any] | None = None) -> Volume:
    """A :class:`Volume` from a 2-D or 3-D scalar SimpleITK image (2-D gains a slice axis).

    Example
    -------
    >>> img = sitk.Image(4, 3, 2, sitk.sitkInt16)
    >>> from_sitk(img).shape
    (2, 3, 4)
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidInputError(
            f"vector image with {image.GetNumberOfComponentsPerPixel()} components",
            where="SimpleITK image",
            hint="extract one component first",
        )
    dim = image.GetDimension()
    array = sitk.GetArrayFromImage(image)
    if dim == 2:
        array = array[None]
        spacing = (*image.GetSpacing(), 1.0)
        origin = (*image.GetOrigin(), 0.0)
        d2 = np.asarray(image.GetDirection()).reshape(2, 2)
        direction = np.eye(3)
        direction[:2, :2] = d2
    elif dim == 3:
        spacing, origin = image.GetSpacing(), image.GetOrigin()
        direction = np.asarray(image.GetDirection()).reshape(3, 3)
    else:
        raise GeometryError(f"{dim}-D SimpleITK image", where="SimpleITK image", hint="pass a 2-D or 3-D image")
    return Volume(
        array, spacing=spacing, origin=origin, direction=direction, modality=modality, metadata=dict(metadata or {})
    )


def _resampled(volume: Volume, image: sitk.Image, *, is_label: bool, reference: Volume) -> Volume:
    meta = {k: v for k, v in volume.metadata.items() if k not in _GRID_KEYS}
    history = list(meta.get("resampling", []))
    history.append(
        {
            "original_spacing": [float(s) for s in volume.spacing],
            "new_spacing": [float(s) for s in reference.spacing],
            "original_shape": list(volume.shape),
            "new_shape": list(reference.shape),
            "original_origin": [float(o) for o in volume.origin],
            "new_origin": [float(o) for o in reference.origin],
            "interpolator": "nearest" if is_label else "linear",
        }
    )
    meta["resampling"] = history
    out = from_sitk(image, modality=volume.modality, metadata=meta)
    if volume.array.dtype == np.bool_ and is_label:
        out = out.with_array(out.array.astype(bool))
    return out


def _resample(volume: Volume, grid: Volume, is_label: bool, default_value: float | None) -> Volume:
    src = to_sitk(volume)
    if is_label:
        interpolator, pixel_type = sitk.sitkNearestNeighbor, src.GetPixelID()
        fill = 0.0 if default_value is None else float(default_value)
    else:
        src = sitk.Cast(src, sitk.sitkFloat32)
        interpolator, pixel_type = sitk.sitkLinear, sitk.sitkFloat32
        fill = float(volume.array.min()) if default_value is None else float(default_value)
    ref = sitk.Image([int(s) for s in grid.size_xyz], pixel_type)
    ref.SetSpacing([float(s) for s in grid.spacing])
    ref.SetOrigin([float(o) for o in grid.origin])
    ref.SetDirection([float(d) for d in grid.direction.ravel()])
    image = sitk.Resample(src, ref, sitk.Transform(), interpolator, fill, pixel_type)
    return _resampled(volume, image, is_label=is_label, reference=grid)


def resample_to_spacing(
    volume: Volume, spacing: Sequence[float], *, is_label: bool = False, default_value: float | None = None
) -> Volume:
    """Resample onto a grid with ``spacing`` (x, y, z mm), same origin and direction, same extent.

    The new size per axis is ``round(size * old_spacing / new_spacing)`` (at least 1).
    Outside the input, images get their minimum value (air for CT), labels 0, unless ``default_value``.

    Example
    -------
    >>> import numpy as np
    >>> lab = Volume(np.ones((4, 4, 4), np.uint8), spacing=(1, 1, 1))
    >>> out = resample_to_spacing(lab, (2, 2, 2), is_label=True)
    >>> out.shape, out.array.dtype.name, int(out.array.min())
    ((2, 2, 2), 'uint8', 1)
    """
    new = tuple(float(s) for s in spacing)
    if len(new) != 3 or not all(np.isfinite(new)) or min(new) <= 0:
        raise InvalidInputError(
            f"spacing must be 3 positive numbers (x, y, z mm), got {tuple(spacing)}",
            where="spacing",
            hint="e.g. (1.0, 1.0, 1.0)",
        )
    size = [max(1, round(n * s / t)) for n, s, t in zip(volume.size_xyz, volume.spacing, new, strict=True)]
    grid = Volume(
        np.empty((size[2], size[1], size[0]), np.uint8), spacing=new, origin=volume.origin, direction=volume.direction
    )
    return _resample(volume, grid, is_label, default_value)


def resample_to_reference(
    volume: Volume, reference: Volume, *, is_label: bool = False, default_value: float | None = None
) -> Volume:
    """Resample ``volume`` onto ``reference``'s grid (shape, spacing, origin, direction).

    Example
    -------
    >>> import numpy as np
    >>> a = Volume(np.arange(8, dtype=np.float32).reshape(2, 2, 2))
    >>> resample_to_reference(a, a).array.tolist() == a.array.tolist()
    True
    """
    return _resample(volume, reference, is_label, default_value)


__all__ = ["from_sitk", "resample_to_reference", "resample_to_spacing", "to_sitk"]
