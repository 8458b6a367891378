"""Label masks on the wire and their differences (001 §10.2.2, §9.2).

Masks travel as NumPy ``.npy`` arrays in ``(z, y, x)`` order on the case's image grid, with integer
voxel values from the project's label map (0 = background). :func:`parse_mask` refuses a truncated
upload, a wrong shape, a non-integer dtype or a value outside the label map, naming the problem;
nothing is stored then. :func:`mask_diff` compares two masks label by label: Dice, HD95, volume change
and the slices that changed.

Example
-------
>>> import numpy as np
>>> a = np.zeros((4, 8, 8), np.uint8); a[1:3, 2:6, 2:6] = 1
>>> b = a.copy(); b[2] = 0
>>> d = mask_diff(a, b, spacing_zyx=(2.0, 1.0, 1.0))
>>> d["labels"]["1"]["changed_slices"], round(d["labels"]["1"]["dice"], 3)
([2], 0.667)
>>> parse_mask(to_npy(a), shape=(4, 8, 8), allowed={1}).shape
(4, 8, 8)
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.metrics import segmentation_metrics

__all__ = ["MaskError", "mask_diff", "parse_mask", "to_npy"]

_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.int32, np.uint32, np.bool_)


class MaskError(InvalidInputError):
    """An uploaded mask cannot be used as given (HTTP 400 for an unreadable body, 422 otherwise)."""

    def __init__(self, message: str, *, hint: str, status: int = 422) -> None:
        super().__init__(message, where="mask", hint=hint)
        self.status = status


def to_npy(array: NDArray[Any]) -> bytes:
    """``array`` as ``.npy`` bytes."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def parse_mask(body: bytes, *, shape: Iterable[int], allowed: set[int]) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """Read and validate an uploaded ``.npy`` label mask; returns it as uint8 (or uint16)."""
    expected = tuple(int(s) for s in shape)
    if not body:
        raise MaskError("the mask upload is empty", hint="send the mask as a .npy array (numpy.save)", status=400)
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise MaskError(
            f"the mask upload is truncated or not a .npy array ({err})",
            hint="send the whole file written by numpy.save",
            status=400,
        ) from None
    if not isinstance(arr, np.ndarray):
        raise MaskError("the upload holds several arrays", hint="send one .npy array", status=400)
    if arr.dtype.type not in _DTYPES:
        raise MaskError(
            f"mask dtype {arr.dtype} is not an integer label type", hint="use uint8 (or uint16) label values"
        )
    if arr.shape != expected:
        raise MaskError(
            f"mask shape {list(arr.shape)} differs from the image grid {list(expected)} (z, y, x)",
            hint="draw the mask on the case's image grid",
        )
    values = {int(v) for v in np.unique(arr)} - {0}
    outside = sorted(values - set(allowed))
    if outside:
        raise MaskError(
            f"mask values {outside[:10]} are not in the project's label map {sorted(allowed)}",
            hint="use only the label values of the project's taxonomy",
        )
    return arr.astype(np.uint16 if values and max(values) > 255 else np.uint8)


def mask_diff(
    a: NDArray[Any], b: NDArray[Any], *, spacing_zyx: Iterable[float], label_names: dict[int, str] | None = None
) -> dict[str, Any]:
    """Per-label Dice, HD95 (mm), volume change (mL) and changed slices from mask ``a`` to mask ``b``."""
    spacing = tuple(float(s) for s in spacing_zyx)
    if a.shape != b.shape:
        raise InvalidInputError(
            f"masks differ in shape {a.shape} vs {b.shape}", where="diff", hint="compare versions of one case"
        )
    out: dict[str, Any] = {"labels": {}, "changed_voxels": int(np.count_nonzero(a != b))}
    metrics = segmentation_metrics(a, b, spacing=spacing)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for label, m in metrics.items():
        in_a, in_b = a == label, b == label
        changed = np.flatnonzero((in_a != in_b).reshape(a.shape[0], -1).any(axis=1)).tolist()
        va, vb = float(in_a.sum()) * voxel_ml, float(in_b.sum()) * voxel_ml
        out["labels"][str(label)] = {
            "label_code": (label_names or {}).get(label),
            "dice": m.dice,
            "hd95_mm": None if not np.isfinite(m.hd95) else float(m.hd95),
            "volume_a_ml": va,
            "volume_b_ml": vb,
            "volume_change_ml": vb - va,
            "changed_slices": changed,
            "note": m.empty,
        }
    return out
