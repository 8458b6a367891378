"""`Volume`: an image array with its world geometry in LPS millimetres.

Conventions (DESIGN.md):

* ``array`` is indexed ``(z, y, x)`` — slice, row, column.
* ``spacing`` is ``(x, y, z)`` in mm, ``origin`` the LPS position of voxel ``(0, 0, 0)``.
* ``direction`` is a 3×3 matrix whose *columns* are the unit LPS directions of the x, y and z
  index axes (the ITK convention: ``direction.ravel()`` equals SimpleITK's ``GetDirection()``).

So the world position of voxel index ``(i, j, k)`` (x, y, z order) is
``origin + direction @ (spacing * (i, j, k))``.

Example
-------
>>> import numpy as np
>>> v = Volume(np.zeros((2, 3, 4), np.int16), spacing=(0.5, 0.5, 2.0), origin=(10.0, 0.0, 0.0))
>>> v.index_to_world([1, 0, 1]).tolist()
[10.5, 0.0, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aimd.core.errors import GeometryError


@dataclass
class Volume:
    """An image array ``(z, y, x)`` with spacing, origin and direction in LPS mm."""

    array: NDArray[Any]
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    modality: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim != 3:
            raise GeometryError(
                f"Volume needs a 3-D array (z, y, x), got {self.array.ndim}-D shape {self.array.shape}",
                hint="add a slice axis for 2-D images: array[None]",
            )
        self.spacing = tuple(float(s) for s in self.spacing)  # type: ignore[assignment]
        self.origin = tuple(float(o) for o in self.origin)  # type: ignore[assignment]
        self.direction = np.asarray(self.direction, dtype=np.float64).reshape(3, 3)
        if len(self.spacing) != 3 or len(self.origin) != 3:
            raise GeometryError(f"spacing and origin need 3 values, got {self.spacing} and {self.origin}")
        if not all(np.isfinite(self.spacing)) or min(self.spacing) <= 0:
            raise GeometryError(f"spacing must be finite and > 0 mm, got {self.spacing}")

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Array shape ``(z, y, x)``."""
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def size_xyz(self) -> tuple[int, int, int]:
        """Grid size in ``(x, y, z)`` order, as SimpleITK's ``GetSize()``."""
        z, y, x = self.array.shape
        return (x, y, z)

    @property
    def affine(self) -> NDArray[np.float64]:
        """4×4 matrix mapping homogeneous ``(i, j, k, 1)`` (x, y, z index order) to LPS mm."""
        aff = np.eye(4)
        aff[:3, :3] = self.direction * np.asarray(self.spacing)[None, :]
        aff[:3, 3] = self.origin
        return aff

    def index_to_world(self, ijk: ArrayLike) -> NDArray[np.float64]:
        """LPS position(s) of index ``(i, j, k)`` in x, y, z order; accepts shape ``(3,)`` or ``(n, 3)``."""
        idx = np.asarray(ijk, dtype=np.float64)
        aff = self.affine
        return idx @ aff[:3, :3].T + aff[:3, 3]

    def world_to_index(self, xyz: ArrayLike) -> NDArray[np.float64]:
        """Continuous index ``(i, j, k)`` of LPS point(s) ``xyz``."""
        pts = np.asarray(xyz, dtype=np.float64)
        aff = self.affine
        return (pts - aff[:3, 3]) @ np.linalg.inv(aff[:3, :3]).T

    def same_grid(self, other: Volume, atol: float = 1e-4) -> bool:
        """True when ``other`` has the same shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def with_array(self, array: NDArray[Any]) -> Volume:
        """A new Volume on the same grid holding ``array`` (same shape)."""
        if array.shape != self.array.shape:
            raise GeometryError(f"array shape {array.shape} differs from the grid {self.array.shape}")
        return Volume(array, self.spacing, self.origin, self.direction.copy(), self.modality, dict(self.metadata))

    def geometry(self) -> dict[str, Any]:
        """Geometry as plain JSON: shape (z, y, x), spacing/origin (x, y, z), direction row-major."""
        return {
            "shape": list(self.shape),
            "spacing": [float(s) for s in self.spacing],
            "origin": [float(o) for o in self.origin],
            "direction": [float(d) for d in self.direction.ravel()],
        }

    def __repr__(self) -> str:
        return (
            f"Volume(shape={self.shape}, dtype={self.array.dtype}, spacing={self.spacing}, "
            f"origin={self.origin}, modality={self.modality!r})"
        )


__all__ = ["Volume"]
