"""Read a DICOM Segmentation (SEG) into a label :class:`Volume`, and lay label volumes on a reference grid.

:func:`read_seg` decodes the SEG with highdicom and returns a label map ``(z, y, x)`` whose voxel
value is the DICOM segment number (0 = background), with LPS geometry from the SEG's plane
positions. Fractional segments are binarised at 0.5 of their maximum. Overlapping segments
cannot be one label map and are an error.

:func:`place_on_grid` moves a label volume onto another volume's grid **without resampling**:
only when every voxel centre of the moving volume coincides with a voxel centre of the target
(same spacing, axes equal up to order and sign, integer offset). A SEG that holds only the
segmented slices of a CT is placed this way on the CT (or on a NIfTI mask of it). Anything
else is a :class:`GeometryError`.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> seg = read_seg(get_testdata_file("liver.dcm"))
>>> seg.shape, seg.metadata["segments"]
((3, 512, 512), {1: 'Liver'})
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.volume import Volume

__all__ = ["SEG_SOP_CLASS_UID", "is_dicom_seg", "place_on_grid", "read_seg"]

SEG_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.66.4"


def is_dicom_seg(path: str | Path) -> bool:
    """True when ``path`` is a DICOM file of the Segmentation Storage SOP class.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> is_dicom_seg(get_testdata_file("liver.dcm")), is_dicom_seg(get_testdata_file("CT_small.dcm"))
    (True, False)
    """
    p = Path(path)
    if not p.is_file():
        return False
    try:
        ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except (InvalidDicomError, OSError, ValueError, TypeError):
        return False
    return str(ds.get("SOPClassUID", "")) == SEG_SOP_CLASS_UID


def read_seg(path: str | Path, segments: Sequence[int] | None = None) -> Volume:
    """Read a DICOM SEG file into a label :class:`Volume` (values = segment numbers).

    Parameters
    ----------
    path:
        A DICOM Segmentation Storage file (binary or fractional, one or more segments).
    segments:
        Segment numbers to keep (default: all). Selecting segments is how overlapping segments
        (an organ and the lesion inside it) are read: one label map holds only disjoint ones.

    Returns
    -------
    Volume
        ``uint8``/``uint16`` labels ``(z, y, x)``; ``metadata["segments"]`` maps segment number to
        its label, ``metadata["referenced_series_uid"]`` names the segmented series.

    Examples
    --------
    >>> from pydicom.data import get_testdata_file
    >>> v = read_seg(get_testdata_file("liver.dcm"))
    >>> [round(s, 4) for s in v.spacing], int(v.array.max())
    ([0.8105, 0.8105, 1.0], 1)
    """
    import highdicom as hd

    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("file does not exist", where=str(p))
    try:
        ds = pydicom.dcmread(p)
    except (InvalidDicomError, OSError) as err:
        raise InvalidInputError(f"not a readable DICOM file: {err}", where=str(p)) from err
    if str(ds.get("SOPClassUID", "")) != SEG_SOP_CLASS_UID:
        raise InvalidInputError(
            f"not a DICOM SEG (SOP class {ds.get('SOPClassUID', 'missing')})",
            where=str(p),
            hint="pass a Segmentation Storage object, or read images with read_volume",
        )
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        hvol = seg.get_volume(combine_segments=False, rescale_fractional=True)
    except (ValueError, AttributeError, KeyError, RuntimeError) as err:
        raise GeometryError(
            f"cannot build a regular 3-D volume from this SEG: {err}",
            where=str(p),
            hint="the SEG frames must lie on parallel, regularly spaced planes",
        ) from err
    numbers = [int(s.SegmentNumber) for s in ds.SegmentSequence]
    stacked = np.asarray(hvol.array)
    if stacked.ndim == 3:
        stacked = stacked[..., None]
    if stacked.shape[-1] != len(numbers):
        numbers = [int(n) for n in seg.segment_numbers]
    masks = stacked >= (0.5 if np.issubdtype(stacked.dtype, np.floating) else 1)
    if segments is not None:
        unknown = sorted(set(segments) - set(numbers))
        if unknown:
            raise InvalidInputError(
                f"segment(s) {unknown} not in this SEG; it holds segments {numbers}",
                where=str(p),
                hint=f"choose from {numbers}",
            )
        keep = [i for i, n in enumerate(numbers) if n in set(segments)]
        masks = masks[..., keep]
        numbers = [numbers[i] for i in keep]
    if np.any(masks.sum(axis=-1) > 1):
        raise InvalidInputError(
            f"segments {numbers} overlap, so they cannot form one label map",
            where=str(p),
            hint="select disjoint segments (read_seg(path, segments=[...]); aimd metrics seg --labels N)",
        )
    labels = np.zeros(masks.shape[:3], dtype=np.uint8 if max(numbers, default=0) < 256 else np.uint16)
    for i, number in enumerate(numbers):
        labels[masks[..., i]] = number
    return Volume(
        labels,
        *_geometry(np.asarray(hvol.affine, dtype=np.float64)),
        modality="SEG",
        metadata=_metadata(ds, p),
    )


def _geometry(
    affine: np.ndarray,
) -> tuple[tuple[float, float, float], tuple[float, float, float], np.ndarray]:
    """highdicom's affine maps (slice, row, column) indices; aimd's axes are (x=column, y=row, z=slice)."""
    cols = [affine[:3, 2], affine[:3, 1], affine[:3, 0]]
    spacing = tuple(float(np.linalg.norm(c)) for c in cols)
    direction = np.column_stack([c / s for c, s in zip(cols, spacing, strict=True)])
    origin = tuple(float(v) for v in affine[:3, 3])
    return spacing, origin, direction  # type: ignore[return-value]


def _metadata(ds: Any, path: Path) -> dict[str, Any]:
    segments = {int(s.SegmentNumber): str(s.get("SegmentLabel", s.SegmentNumber)) for s in ds.SegmentSequence}
    ref_series = None
    for item in ds.get("ReferencedSeriesSequence", []):
        ref_series = str(item.get("SeriesInstanceUID", "")) or None
        break
    return {
        "source": str(path),
        "segments": segments,
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "referenced_series_uid": ref_series,
        "segmentation_type": str(ds.get("SegmentationType", "")),
    }


def place_on_grid(moving: Volume, target: Volume, *, atol: float = 1e-3, where: str | None = None) -> Volume:
    """Lay ``moving``'s labels on ``target``'s grid by exact re-indexing (no interpolation).

    Allowed: the same voxel size and the same axes up to order and sign, with voxel centres
    that coincide (integer offset, within ``atol`` mm). Target voxels not covered are 0. A
    labelled voxel falling outside the target, or any other grid difference, is a
    :class:`GeometryError`.

    Examples
    --------
    >>> import numpy as np
    >>> big = Volume(np.zeros((4, 5, 6), np.uint8), spacing=(1, 1, 2))
    >>> small = Volume(np.ones((2, 5, 6), np.uint8), spacing=(1, 1, 2), origin=(0, 0, 4))
    >>> place_on_grid(small, big).array[:, 0, 0].tolist()
    [0, 0, 1, 1]
    """
    if moving.same_grid(target, atol=atol):
        return moving
    loc = where or str(moving.metadata.get("source", "mask"))
    # express moving's index axes in target index units: M = inv(A_target) @ A_moving
    m = np.linalg.inv(target.affine[:3, :3]) @ moving.affine[:3, :3]
    perm = np.rint(m)
    if not np.allclose(m, perm, atol=1e-4) or not all(
        sorted(np.abs(perm[:, j]).tolist()) == [0, 0, 1] for j in range(3)
    ):
        raise GeometryError(
            f"mask grid (spacing {moving.spacing}, direction {moving.direction.round(4).tolist()}) "
            f"differs from the reference grid (spacing {target.spacing}, "
            f"direction {target.direction.round(4).tolist()})",
            where=loc,
            hint="resample explicitly onto the reference grid before computing metrics",
        )
    offset = target.world_to_index(moving.origin)
    if not np.allclose(offset, np.rint(offset), atol=atol / min(target.spacing)):
        raise GeometryError(
            f"mask voxel centres are off the reference grid by {offset - np.rint(offset)} voxels",
            where=loc,
            hint="resample explicitly onto the reference grid",
        )
    offset = np.rint(offset).astype(int)
    p = perm.astype(int)
    src_xyz = moving.array.transpose(2, 1, 0)  # index axes x, y, z
    order = [int(np.flatnonzero(p[a])[0]) for a in range(3)]  # moving axis feeding each target axis
    arr = np.transpose(src_xyz, order)
    starts = []
    for a, j in enumerate(order):
        if p[a, j] < 0:
            arr = np.flip(arr, axis=a)
            starts.append(int(offset[a]) - (src_xyz.shape[j] - 1))
        else:
            starts.append(int(offset[a]))
    size_t = target.size_xyz
    dst, keep = [], []
    for a in range(3):
        lo, hi = starts[a], starts[a] + arr.shape[a]
        clo, chi = max(lo, 0), min(hi, size_t[a])
        if chi <= clo:
            clo = chi = max(min(lo, size_t[a]), 0)
        dst.append(slice(clo, chi))
        keep.append(slice(clo - lo, chi - lo))
    inside = arr[tuple(keep)]
    if np.count_nonzero(inside) != np.count_nonzero(arr):
        raise GeometryError(
            "labelled mask voxels fall outside the reference image",
            where=loc,
            hint="check that the mask belongs to this image",
        )
    out_xyz = np.zeros(size_t, dtype=moving.array.dtype)
    out_xyz[tuple(dst)] = inside
    return Volume(
        np.ascontiguousarray(out_xyz.transpose(2, 1, 0)),
        target.spacing,
        target.origin,
        target.direction.copy(),
        moving.modality,
        dict(moving.metadata),
    )
