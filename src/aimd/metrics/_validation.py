"""Input checks shared by the metric modules: masks, spacings, label vectors, score vectors.

Every check raises :class:`aimd.core.errors.InvalidInputError` (or a subclass) whose message
states the value received, so a caller can name the file or column the data came from.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aimd.core.errors import GeometryError, InvalidInputError

__all__ = [
    "as_label_array",
    "as_spacing",
    "as_vector",
    "check_same_length",
    "safe_ratio",
]


def as_label_array(mask: ArrayLike, name: str) -> NDArray[Any]:
    """Return ``mask`` as a non-negative integer (or bool) array of 2 or 3 dimensions.

    Floating-point masks (NIfTI often stores labels as float) are accepted when every value
    is a whole number; anything else is an error naming ``name``.
    """
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise InvalidInputError(f"{name} must be a 2-D or 3-D mask, got {arr.ndim}-D shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{name} holds NaN or infinite values; a mask holds whole labels")
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise InvalidInputError(
                f"{name} holds non-integer values (e.g. {arr[arr != as_int].flat[0]!r}); a mask holds labels",
                hint="threshold probability maps before computing segmentation metrics",
            )
        arr = as_int
    elif not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{name} has dtype {arr.dtype}; a mask needs integer or bool labels")
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise InvalidInputError(f"{name} holds negative labels (min {arr.min()}); labels must be >= 0")
    return arr


def as_spacing(spacing: float | Sequence[float] | None, ndim: int) -> NDArray[np.float64]:
    """Spacing in array-axis order as a float array of length ``ndim`` (``None`` means 1 mm)."""
    if spacing is None:
        return np.ones(ndim)
    sp = np.atleast_1d(np.asarray(spacing, dtype=np.float64))
    if sp.size == 1:
        sp = np.repeat(sp, ndim)
    if sp.size != ndim:
        raise GeometryError(f"spacing needs {ndim} values in array-axis order, got {sp.tolist()}")
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise GeometryError(f"spacing must be finite and > 0 mm, got {sp.tolist()}")
    return sp


def as_vector(values: ArrayLike, name: str, *, numeric: bool = True) -> NDArray[Any]:
    """A 1-D array; numeric vectors must be finite."""
    arr = np.asarray(values)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InvalidInputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if numeric:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise InvalidInputError(f"{name} must be numeric: {err}") from err
        if not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{name} holds NaN or infinite values", hint="drop or fill missing rows")
    return arr


def check_same_length(**arrays: Sized) -> int:
    """Raise unless all arrays have the same length; return it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise InvalidInputError(f"inputs must have the same length, got {listed}")
    return next(iter(lengths.values()), 0)


def safe_ratio(num: float, den: float, *, when_zero: float) -> float:
    """``num / den``, or the stated value ``when_zero`` when the denominator is 0."""
    return float(num) / float(den) if den else float(when_zero)
