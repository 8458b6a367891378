"""Mask files of a package: reading (NIfTI, DICOM SEG), image grids, geometry comparison.

A mask belongs on the grid of the image it annotates (001 §8.4 a, §9.3.1 a): same shape, spacing,
origin and direction. :func:`grid_differences` lists what differs, within tolerances;
:class:`MaskStore` reads each file once per run.

Example
-------
>>> import numpy as np
>>> from aimd.annotation.schema import ImageRef
>>> ref = ImageRef(uid="1", modality="CT", shape=(4, 3, 2), spacing=(1, 1, 2), origin=(0, 0, 0))
>>> mask = Volume(np.zeros((2, 3, 4), np.uint8), spacing=(1, 1, 2.5))
>>> [d.field for d in grid_differences(mask, ref)]
['spacing']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.annotation.schema import ImageRef
from aimd.core.errors import AimdError, GeometryError, InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.seg_read import is_dicom_seg, place_on_grid, read_seg
from aimd.imaging.volume import Volume

__all__ = [
    "GridDifference",
    "GridTolerance",
    "MaskStore",
    "grid_differences",
    "image_grid",
    "read_mask_file",
    "ref_from_volume",
]


@dataclass(frozen=True)
class GridTolerance:
    """How close two grids must be to count as the same (mm for origin, relative for spacing)."""

    spacing_rtol: float = 1e-3
    origin_atol_mm: float = 1e-3
    direction_atol: float = 1e-4


@dataclass(frozen=True)
class GridDifference:
    """One geometry field that differs: what the image says and what the mask has."""

    field: str
    expected: Any
    got: Any


def image_grid(ref: ImageRef) -> Volume:
    """A Volume with the geometry of ``ref`` and a zero-memory (broadcast) zero array.

    Example
    -------
    >>> from aimd.annotation.schema import ImageRef
    >>> image_grid(ImageRef(uid="1", modality="CT", shape=(4, 3, 2), spacing=(1, 1, 2), origin=(0, 0, 0))).shape
    (2, 3, 4)
    """
    x, y, z = ref.shape
    return Volume(
        np.broadcast_to(np.zeros(1, np.uint8), (z, y, x)),
        spacing=ref.spacing,
        origin=ref.origin,
        direction=np.asarray(ref.direction, dtype=np.float64),
        modality=ref.modality,
    )


def ref_from_volume(volume: Volume, uid: str, **extra: Any) -> ImageRef:
    """An :class:`ImageRef` describing ``volume``'s grid."""
    return ImageRef(
        uid=uid,
        modality=volume.modality or "OT",
        shape=volume.size_xyz,
        spacing=tuple(float(s) for s in volume.spacing),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in volume.origin),  # type: ignore[arg-type]
        direction=volume.direction.tolist(),
        **extra,
    )


def grid_differences(volume: Volume, ref: ImageRef, tol: GridTolerance | None = None) -> list[GridDifference]:
    """Fields in which ``volume``'s grid differs from ``ref`` (shape, spacing, origin, direction)."""
    tol = tol or GridTolerance()
    out = []
    if tuple(volume.size_xyz) != tuple(ref.shape):
        out.append(GridDifference("shape", list(ref.shape), list(volume.size_xyz)))
    if not np.allclose(volume.spacing, ref.spacing, rtol=tol.spacing_rtol, atol=0):
        out.append(GridDifference("spacing", list(ref.spacing), [round(s, 6) for s in volume.spacing]))
    if not np.allclose(volume.origin, ref.origin, rtol=0, atol=tol.origin_atol_mm):
        out.append(GridDifference("origin", list(ref.origin), [round(o, 6) for o in volume.origin]))
    if not np.allclose(volume.direction, np.asarray(ref.direction), rtol=0, atol=tol.direction_atol):
        out.append(GridDifference("direction", ref.direction, np.round(volume.direction, 6).tolist()))
    return out


def read_mask_file(path: str | Path, ref: ImageRef | None = None) -> Volume:
    """Read a NIfTI (or other image) mask, or a DICOM SEG laid on ``ref``'s grid when possible.

    A SEG stores only the segmented frames, so it is placed on the image grid by exact re-indexing
    (:func:`aimd.imaging.seg_read.place_on_grid`); when that is impossible it is returned as stored
    and the geometry check reports the difference.
    """
    p = Path(path)
    if is_dicom_seg(p):
        seg = read_seg(p)
        if ref is not None:
            try:
                return place_on_grid(seg, image_grid(ref), where=str(p))
            except GeometryError:
                return seg
        return seg
    return read_volume(p)


class MaskStore:
    """Reads each mask file once; remembers failures so they are reported once."""

    def __init__(self) -> None:
        self._volumes: dict[Path, Volume] = {}
        self._errors: dict[Path, AimdError] = {}

    def get(self, path: Path, ref: ImageRef | None = None) -> Volume:
        """The mask at ``path`` (raises the :class:`AimdError` met while reading it)."""
        key = path.resolve()
        if key in self._errors:
            raise self._errors[key]
        if key not in self._volumes:
            try:
                if not key.is_file():
                    raise InvalidInputError("mask file does not exist", where=str(path))
                self._volumes[key] = read_mask_file(key, ref)
            except AimdError as err:
                self._errors[key] = err
                raise
        return self._volumes[key]

    def object_mask(self, path: Path, value: int, ref: ImageRef | None = None) -> NDArray[np.bool_]:
        """Boolean ``(z, y, x)`` mask of voxels equal to ``value``."""
        return np.asarray(self.get(path, ref).array) == value
