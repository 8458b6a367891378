"""Delta saves of label masks: a box of changed voxels applied onto the stored draft (001 §10.2.1, §10.2.2).

A patch is a ``.npy`` label array (``z, y, x``) — optionally gzip-, deflate- or zstd-compressed — placed at a
voxel offset ``(z, y, x)`` of the case's image grid. It goes through the same validation as a whole mask
(:func:`aimd.platform.masks.parse_mask`: integer dtype, label values of the project's map), and the box
must lie inside the grid. A patch that decompresses beyond the size of a whole uint16 mask is refused
before it is inflated further (the same inflater as whole-mask uploads).

Example
-------
>>> import gzip, numpy as np
>>> from aimd.platform.masks import to_npy
>>> base = np.zeros((4, 8, 8), np.uint8)
>>> patch = np.full((1, 2, 3), 5, np.uint8)
>>> out = apply_patch(base, gzip.compress(to_npy(patch)), (2, 1, 4), allowed={5}, encoding="gzip")
>>> int(out.sum()) // 5, out[2, 1:3, 4:7].tolist()
(6, [[5, 5, 5], [5, 5, 5]])
>>> try:
...     apply_patch(base, to_npy(patch), (3, 7, 4), allowed={5})
... except MaskError as err:
...     print(err.message)
the patch box z 3:4, y 7:9, x 4:7 leaves the image grid [4, 8, 8] (z, y, x)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.platform.masks import MaskError, decode_body, parse_mask

__all__ = ["apply_patch", "patch_shape", "read_patch"]


def patch_shape(body: bytes) -> tuple[int, ...]:
    """The array shape in a ``.npy`` header (the array itself is read by ``parse_mask``)."""
    buf = io.BytesIO(body)
    try:
        major, _ = np.lib.format.read_magic(buf)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = read(buf)
    except (ValueError, OSError, EOFError) as err:
        raise MaskError(
            f"the patch is truncated or not a .npy array ({err})", hint="send the box written by numpy.save", status=400
        ) from None
    return tuple(int(s) for s in shape)


def read_patch(
    body: bytes, offset: Sequence[int], grid: Sequence[int], *, allowed: set[int], encoding: str | None = None
) -> tuple[tuple[int, int, int], NDArray[Any]]:
    """The validated box in ``body`` and its offset (z, y, x), which must lie inside the image ``grid``."""
    raw = decode_body(body, encoding, limit=int(np.prod(tuple(grid))) * 2 + 4096)
    shape = patch_shape(raw)
    at = tuple(int(v) for v in offset)
    size = tuple(int(v) for v in grid)
    if len(shape) != 3 or len(at) != 3:
        raise MaskError(
            f"the patch has shape {list(shape)} at offset {list(at)}; both need 3 axes (z, y, x)",
            hint="send a 3-D box and its z, y, x offset",
        )
    if any(o < 0 or o + n > lim for o, n, lim in zip(at, shape, size, strict=True)) or 0 in shape:
        box = ", ".join(f"{a} {o}:{o + n}" for a, o, n in zip("zyx", at, shape, strict=True))
        raise MaskError(
            f"the patch box {box} leaves the image grid {list(size)} (z, y, x)",
            hint="send a box of changed voxels inside the image",
        )
    return at, parse_mask(raw, shape=shape, allowed=allowed)  # type: ignore[return-value]


def apply_patch(
    base: NDArray[Any],
    body: bytes,
    offset: Sequence[int],
    *,
    allowed: set[int],
    encoding: str | None = None,
) -> NDArray[Any]:
    """``base`` with the patch in ``body`` written at ``offset`` (z, y, x); ``base`` is left unchanged."""
    at, patch = read_patch(body, offset, base.shape, allowed=allowed, encoding=encoding)
    shape = patch.shape
    out = base.astype(np.result_type(base.dtype, patch.dtype), copy=True)
    out[at[0] : at[0] + shape[0], at[1] : at[1] + shape[1], at[2] : at[2] + shape[2]] = patch
    return out
