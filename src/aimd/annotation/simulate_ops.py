"""Mask perturbations that mimic how annotators differ: boundary dilation/erosion, shifts, extra blobs.

Every operation is a pure function of its inputs (and a seeded generator where it samples), so a
simulated reader is reproducible from the seed.

Example
-------
>>> import numpy as np
>>> m = np.zeros((9, 9, 9), bool); m[3:6, 3:6, 3:6] = True
>>> int(dilate(m, 1).sum()), int(erode(m, 1).sum()), int(shift(m, (2, 0, 0)).sum())
(81, 1, 27)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["apply_op", "ball", "dilate", "erode", "place_blob", "shift"]

_CROSS = ndimage.generate_binary_structure(3, 1)


def dilate(mask: NDArray[np.bool_], voxels: int) -> NDArray[np.bool_]:
    """Grow the boundary by ``voxels`` face-connected steps."""
    return ndimage.binary_dilation(mask, _CROSS, iterations=voxels) if voxels > 0 else mask.copy()


def erode(mask: NDArray[np.bool_], voxels: int) -> NDArray[np.bool_]:
    """Shrink the boundary by ``voxels`` steps; an object that would vanish keeps its centre voxel."""
    out = ndimage.binary_erosion(mask, _CROSS, iterations=voxels) if voxels > 0 else mask.copy()
    if not out.any() and mask.any():
        centre = np.round(ndimage.center_of_mass(mask)).astype(int)
        out[tuple(centre)] = True
    return out


def shift(mask: NDArray[np.bool_], xyz: Sequence[int]) -> NDArray[np.bool_]:
    """Move the mask by whole voxels ``(dx, dy, dz)``; what leaves the grid is dropped (no wrap)."""
    out = np.zeros_like(mask)
    dz_dy_dx = (int(xyz[2]), int(xyz[1]), int(xyz[0]))
    src, dst = [], []
    for d, n in zip(dz_dy_dx, mask.shape, strict=True):
        src.append(slice(max(0, -d), min(n, n - d)))
        dst.append(slice(max(0, d), min(n, n + d)))
    out[tuple(dst)] = mask[tuple(src)]
    return out


def apply_op(mask: NDArray[np.bool_], op: str, amount: Sequence[int] | int) -> NDArray[np.bool_]:
    """Apply ``("none" | "dilate" | "erode" | "shift", amount)`` to a mask."""
    if op == "none":
        return mask.copy()
    if op == "dilate":
        return dilate(mask, int(amount))  # type: ignore[arg-type]
    if op == "erode":
        return erode(mask, int(amount))  # type: ignore[arg-type]
    if op == "shift":
        return shift(mask, amount)  # type: ignore[arg-type]
    raise ValueError(f"unknown mask operation {op!r}")


def ball(shape: Sequence[int], centre_zyx: Sequence[float], radius_vox: float) -> NDArray[np.bool_]:
    """A voxelised ball (radius in voxels) on a grid of ``shape``."""
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    cz, cy, cx = centre_zyx
    return (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_vox**2


def place_blob(
    region: NDArray[np.bool_],
    avoid: NDArray[np.bool_],
    rng: np.random.Generator,
    *,
    radius_vox: float = 2.0,
    clearance_vox: float = 6.0,
) -> NDArray[np.bool_] | None:
    """A ball inside ``region``, at least ``clearance_vox`` from ``avoid``; ``None`` when nothing fits."""
    inner = ndimage.binary_erosion(region, _CROSS, iterations=int(np.ceil(radius_vox)))
    far = ndimage.distance_transform_edt(~avoid) > clearance_vox if avoid.any() else np.ones_like(region)
    candidates = np.argwhere(inner & far)
    if candidates.size == 0:
        return None
    centre = candidates[int(rng.integers(len(candidates)))]
    return ball(region.shape, centre, radius_vox) & region
