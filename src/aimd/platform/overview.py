"""Downsampled overviews of large case images for the workspace's first view (001 §10.2.1).

A 512×512×200 CT is 100 MB: the workspace shows a block-averaged copy of at most
:data:`OVERVIEW_VOXELS` voxels (1 MB for int16) in the axial, coronal and sagittal views at once (the 3-D
render on demand) while the full-resolution image downloads, and keeps it beside the one-slice display
of large volumes. Block factors are whole numbers per axis, grown along the axis with the most voxels per
block step; the voxel type is kept.

Example
-------
>>> import numpy as np
>>> arr = np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8)
>>> small, factors = overview(arr, max_voxels=32)
>>> small.shape, factors, small.dtype
((2, 4, 4), (2, 2, 2), dtype('int16'))
>>> int(small[0, 0, 0]) == int(np.rint(arr[:2, :2, :2].mean()))
True
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["OVERVIEW_VOXELS", "overview"]

OVERVIEW_VOXELS = 512 * 1024
"""Most voxels an overview holds."""


def overview(arr: NDArray[Any], *, max_voxels: int = OVERVIEW_VOXELS) -> tuple[NDArray[Any], tuple[int, int, int]]:
    """Block means of ``arr`` (z, y, x) with at most ``max_voxels`` voxels, and the block factors."""
    factors = [1, 1, 1]

    def size() -> int:
        return int(np.prod([n // f for n, f in zip(arr.shape, factors, strict=True)]))

    while size() > max_voxels:
        axis = int(np.argmax([n / f for n, f in zip(arr.shape, factors, strict=True)]))
        factors[axis] += 1
    fz, fy, fx = factors
    nz, ny, nx = (n // f for n, f in zip(arr.shape, factors, strict=True))
    blocks = arr[: nz * fz, : ny * fy, : nx * fx].reshape(nz, fz, ny, fy, nx, fx)
    mean = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        mean = np.rint(mean)
    return np.ascontiguousarray(mean.astype(arr.dtype)), (fz, fy, fx)
