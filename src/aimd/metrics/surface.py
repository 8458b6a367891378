"""Mask borders and surface distances (Hausdorff, HD95, ASSD) in millimetres.

One definition is used everywhere in aimd, the one MONAI uses (``monai.metrics`` with
``spacing`` and the default Euclidean metric), so numbers agree with that reference:

* **border** — the mask minus its binary erosion by the face-connected structuring element
  (6-neighbourhood in 3-D, 4 in 2-D); voxels outside the image count as background, so a mask
  touching the image edge has a border there;
* **distances** — Euclidean, in mm, between border voxel centres, with the spacing given in
  *array-axis order* (for a :class:`~aimd.imaging.volume.Volume` that is ``spacing[::-1]``);
* **HD** — the larger of the two directed maxima (001 D.7, formula D.6);
* **HD95** — the larger of the two directed 95th percentiles, each linearly interpolated
  (``numpy.percentile`` default, equal to ``torch.quantile``);
* **ASSD** — the mean of both directions' distances pooled together (MONAI ``symmetric=True``).

Speed comes from working only where the masks are: :func:`foreground_boxes` splits the volume
into disjoint boxes around the foreground, borders are found once per box and reused for every
distance, and nearest-border distances come from a KD-tree over border voxels only.

Example
-------
>>> import numpy as np
>>> ref = np.zeros((20, 20), bool); ref[5:10, 5:10] = True
>>> pred = np.zeros((20, 20), bool); pred[5:10, 7:12] = True
>>> d = surface_distances(ref, pred, spacing=(1.0, 0.5))
>>> round(d.hausdorff, 3), round(d.hd95, 3)
(1.0, 1.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from aimd.core.errors import GeometryError
from aimd.metrics._validation import as_label_array, as_spacing

__all__ = [
    "KDTREE_BACKEND",
    "SURFACE_DEFINITION",
    "BorderPoints",
    "SurfaceDistances",
    "average_symmetric_surface_distance",
    "border_points",
    "directed_distances",
    "foreground_boxes",
    "hausdorff_distance",
    "hausdorff_distance_95",
    "image_diagonal_mm",
    "mask_border",
    "nearest_distances",
    "surface_distances",
]

SURFACE_DEFINITION = (
    "border = mask minus its face-connected erosion (outside the image is background); "
    "Euclidean distances in mm between border voxel centres; HD = max of both directed maxima; "
    "HD95 = max of both directed 95th percentiles (linear interpolation); ASSD = mean of both "
    "directions' distances pooled (as monai.metrics with spacing, symmetric=True)"
)

Box = tuple[slice, ...]

try:  # the faster exact KD-tree when installed; scipy's otherwise (same values)
    import pykdtree.kdtree  # noqa: F401

    KDTREE_BACKEND = "pykdtree"
except ImportError:  # pragma: no cover - depends on the environment
    KDTREE_BACKEND = "scipy"

PYKDTREE_MIN_POINTS = 20_000  # below this, starting OpenMP threads costs more than it saves


def mask_border(mask: ArrayLike) -> NDArray[np.bool_]:
    """Voxels of ``mask`` that have at least one face neighbour outside it (or lie on the image edge).

    Equal to ``mask ^ scipy.ndimage.binary_erosion(mask)`` with the default structuring element.

    Parameters
    ----------
    mask:
        Boolean (or 0/non-zero) array, 2-D or 3-D.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((5, 5), bool); m[1:4, 1:4] = True
    >>> int(mask_border(m).sum())
    8
    """
    m = np.asarray(mask).astype(bool, copy=False)
    interior = m.copy()
    full = [slice(None)] * m.ndim
    for axis in range(m.ndim):
        lo, hi, first, last = list(full), list(full), list(full), list(full)
        lo[axis], hi[axis] = slice(1, None), slice(None, -1)
        interior[tuple(lo)] &= m[tuple(hi)]
        interior[tuple(hi)] &= m[tuple(lo)]
        first[axis], last[axis] = 0, -1
        interior[tuple(first)] = False
        interior[tuple(last)] = False
    return m & ~interior


def _block_max(arr: NDArray[Any], block: int) -> NDArray[Any]:
    """Maximum over non-overlapping blocks of ``block`` voxels per axis (last block may be shorter)."""
    out = arr
    for axis in range(arr.ndim):
        n = out.shape[axis]
        full = (n // block) * block
        parts = []
        if full:
            head = out[(slice(None),) * axis + (slice(0, full),)]
            shape = head.shape[:axis] + (full // block, block) + head.shape[axis + 1 :]
            parts.append(head.reshape(shape).max(axis=axis + 1))
        if full < n:
            tail = out[(slice(None),) * axis + (slice(full, n),)]
            parts.append(tail.max(axis=axis, keepdims=True))
        out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=axis)
    return out


def _merge_overlapping(spans: NDArray[np.int64]) -> NDArray[np.int64]:
    """Merge boxes ``(n, ndim, 2)`` until no two overlap (a merged box may reach a third)."""
    while len(spans) > 1:
        if len(spans) > 2000:  # pathological speckle: one box around everything
            return np.stack([spans[:, :, 0].min(axis=0), spans[:, :, 1].max(axis=0)], axis=-1)[None]
        lo, hi = spans[:, :, 0], spans[:, :, 1]
        overlap = np.all((lo[:, None, :] < hi[None, :, :]) & (lo[None, :, :] < hi[:, None, :]), axis=-1)
        np.fill_diagonal(overlap, False)
        if not overlap.any():
            break
        n_comp, comp = connected_components(csr_matrix(overlap), directed=False)
        merged = np.empty((n_comp,) + spans.shape[1:], dtype=spans.dtype)
        for c in range(n_comp):
            members = spans[comp == c]
            merged[c, :, 0] = members[:, :, 0].min(axis=0)
            merged[c, :, 1] = members[:, :, 1].max(axis=0)
        spans = merged
    return spans


def foreground_boxes(*masks: NDArray[Any], block: int = 8) -> list[Box]:
    """Disjoint boxes that together hold every non-zero voxel of ``masks``.

    Each box has a one-voxel background margin (or reaches the image edge), so borders
    computed inside a box equal borders computed on the whole image.

    Parameters
    ----------
    masks:
        Arrays of one shape; non-zero voxels are foreground.
    block:
        Edge length of the occupancy blocks used to group nearby foreground.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((40, 40), np.uint8); m[2:4, 2:4] = 1; m[30:33, 30:33] = 2
    >>> foreground_boxes(m)
    [(slice(1, 5, None), slice(1, 5, None)), (slice(29, 34, None), slice(29, 34, None))]
    """
    if not masks:
        return []
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise GeometryError(f"masks must share one shape, got {[m.shape for m in masks]}")
    occupied: NDArray[np.bool_] | None = None
    for m in masks:
        bm = _block_max(m if m.dtype != bool else m.view(np.uint8), block) > 0
        occupied = bm if occupied is None else occupied | bm
    assert occupied is not None
    if not occupied.any():
        return []
    clusters, _ = ndimage.label(occupied, structure=np.ones((3,) * occupied.ndim, bool))
    spans = np.array(
        [
            [(max(s.start * block - 1, 0), min(s.stop * block + 1, n)) for s, n in zip(sl, shape, strict=True)]
            for sl in ndimage.find_objects(clusters)
            if sl is not None
        ],
        dtype=np.int64,
    )
    spans = _merge_overlapping(spans)
    boxes = [_shrink(tuple(slice(int(lo), int(hi)) for lo, hi in span), masks) for span in spans]
    return sorted(boxes, key=lambda b: tuple(s.start for s in b))


def _shrink(box: Box, masks: Sequence[NDArray[Any]]) -> Box:
    """Tighten a box to its foreground plus a one-voxel margin (clipped at the image edge)."""
    union: NDArray[np.bool_] | None = None
    for m in masks:
        sub = m[box] != 0
        union = sub if union is None else union | sub
    assert union is not None
    out = []
    for axis, sl in enumerate(box):
        other = tuple(a for a in range(union.ndim) if a != axis)
        idx = np.flatnonzero(union.any(axis=other))
        start = max(sl.start + int(idx[0]) - 1, 0)
        stop = min(sl.start + int(idx[-1]) + 2, sl.stop)
        out.append(slice(start, stop))
    return tuple(out)


@dataclass
class BorderPoints:
    """Border voxel positions (mm) of a reference and a predicted mask, gathered over boxes.

    ``ref_only`` / ``pred_only`` are the border voxels not shared with the other border
    (their distance needs a search); ``shared`` counts voxels on both borders (distance 0).
    """

    ref: list[NDArray[np.float64]]
    pred: list[NDArray[np.float64]]
    ref_only: list[NDArray[np.float64]]
    pred_only: list[NDArray[np.float64]]
    shared: int = 0

    @classmethod
    def empty(cls) -> BorderPoints:
        """A collection with no points yet."""
        return cls([], [], [], [], 0)

    def add(
        self,
        ref_mask: NDArray[np.bool_],
        pred_mask: NDArray[np.bool_],
        origin: Sequence[int],
        spacing: NDArray[np.float64],
    ) -> None:
        """Add the borders of two masks cut from a box starting at index ``origin``."""
        rb = mask_border(ref_mask)
        pb = mask_border(pred_mask)
        offset = np.asarray(origin, dtype=np.float64)
        r_flat, p_flat = np.flatnonzero(rb), np.flatnonzero(pb)
        r_pts = _to_mm(np.unravel_index(r_flat, rb.shape), offset, spacing)
        p_pts = _to_mm(np.unravel_index(p_flat, pb.shape), offset, spacing)
        r_shared = pb.reshape(-1)[r_flat]
        p_shared = rb.reshape(-1)[p_flat]
        self.ref.append(r_pts)
        self.pred.append(p_pts)
        self.ref_only.append(r_pts[~r_shared])
        self.pred_only.append(p_pts[~p_shared])
        self.shared += int(np.count_nonzero(r_shared))

    def distances(self) -> SurfaceDistances:
        """Directed nearest-border distances in both directions."""
        ref = _stack(self.ref)
        pred = _stack(self.pred)
        return SurfaceDistances(
            pred_to_ref=directed_distances(_stack(self.pred_only), ref, self.shared),
            ref_to_pred=directed_distances(_stack(self.ref_only), pred, self.shared),
        )


def border_points(ref: ArrayLike, pred: ArrayLike, spacing: float | Sequence[float] | None = None) -> BorderPoints:
    """Border voxel positions (mm) of two binary masks (non-zero is foreground).

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((6, 6), bool); m[1:5, 1:5] = True
    >>> bp = border_points(m, m)
    >>> bp.shared, len(bp.ref_only[0])
    (12, 0)
    """
    r = as_label_array(ref, "reference mask") != 0
    p = as_label_array(pred, "predicted mask") != 0
    if r.shape != p.shape:
        raise GeometryError(f"reference and prediction differ in shape: {r.shape} vs {p.shape}")
    sp = as_spacing(spacing, r.ndim)
    points = BorderPoints.empty()
    for box in foreground_boxes(r, p):
        points.add(r[box], p[box], [s.start for s in box], sp)
    return points


def _to_mm(
    idx: tuple[NDArray[np.intp], ...], offset: NDArray[np.float64], spacing: NDArray[np.float64]
) -> NDArray[np.float64]:
    pts = np.empty((idx[0].size, len(idx)), dtype=np.float64)
    for axis, col in enumerate(idx):
        pts[:, axis] = (col + offset[axis]) * spacing[axis]
    return pts


def _stack(parts: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    nonempty = [p for p in parts if len(p)]
    if not nonempty:
        return np.empty((0, parts[0].shape[1] if parts else 3))
    return nonempty[0] if len(nonempty) == 1 else np.concatenate(nonempty)


def directed_distances(source: NDArray[np.float64], target: NDArray[np.float64], zeros: int = 0) -> NDArray[np.float64]:
    """Distance from each ``source`` point to its nearest ``target`` point, after ``zeros`` zero distances.

    Parameters
    ----------
    source, target:
        Point coordinates in mm, shape ``(n, ndim)``.
    zeros:
        Number of source points known to coincide with a target point.

    Examples
    --------
    >>> import numpy as np
    >>> directed_distances(np.array([[0.0, 3.0]]), np.array([[0.0, 0.0], [0.0, 1.0]]), zeros=1).tolist()
    [0.0, 2.0]
    """
    out = np.zeros(zeros + len(source), dtype=np.float64)
    if len(source):
        if not len(target):
            out[zeros:] = np.inf
        else:
            large = len(source) + len(target) >= PYKDTREE_MIN_POINTS
            out[zeros:] = nearest_distances(source, target, backend=KDTREE_BACKEND if large else "scipy")
    return out


def nearest_distances(
    source: NDArray[np.float64], target: NDArray[np.float64], backend: str = "scipy"
) -> NDArray[np.float64]:
    """Exact Euclidean distance from each source point to its nearest target point (KD-tree).

    ``backend`` is ``"pykdtree"`` (OpenMP queries, about twice as fast on border point sets) or
    ``"scipy"`` (:class:`scipy.spatial.cKDTree`); both are exact and return identical float64 values.

    Examples
    --------
    >>> import numpy as np
    >>> nearest_distances(np.array([[3.0, 4.0]]), np.array([[0.0, 0.0], [9.0, 9.0]])).tolist()
    [5.0]
    """
    src = np.ascontiguousarray(source, dtype=np.float64)
    tgt = np.ascontiguousarray(target, dtype=np.float64)
    if backend == "pykdtree":
        from pykdtree.kdtree import KDTree

        return np.asarray(KDTree(tgt, leafsize=16).query(src, k=1)[0], dtype=np.float64)
    if backend != "scipy":
        raise ValueError(f"backend must be 'pykdtree' or 'scipy', got {backend!r}")
    return np.asarray(cKDTree(tgt, leafsize=32, balanced_tree=False).query(src, k=1, workers=-1)[0])


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed border distances (mm) of a pair of masks, and the summaries aimd reports."""

    pred_to_ref: NDArray[np.float64]
    ref_to_pred: NDArray[np.float64]

    @property
    def empty(self) -> bool:
        """True when either border is empty (distances undefined)."""
        return self.pred_to_ref.size == 0 or self.ref_to_pred.size == 0

    def percentile(self, q: float) -> float:
        """Larger of the two directed ``q``-th percentiles (linear interpolation)."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must be in [0, 100], got {q}")
        return float(max(np.percentile(self.pred_to_ref, q), np.percentile(self.ref_to_pred, q)))

    @property
    def hausdorff(self) -> float:
        """Symmetric Hausdorff distance (001 D.7, formula D.6)."""
        return float(max(self.pred_to_ref.max(), self.ref_to_pred.max()))

    @property
    def hd95(self) -> float:
        """Larger of the two directed 95th percentiles."""
        return self.percentile(95.0)

    @property
    def assd(self) -> float:
        """Mean of both directions' distances pooled."""
        n = self.pred_to_ref.size + self.ref_to_pred.size
        return float((self.pred_to_ref.sum() + self.ref_to_pred.sum()) / n)


def surface_distances(
    ref: ArrayLike, pred: ArrayLike, spacing: float | Sequence[float] | None = None
) -> SurfaceDistances:
    """Directed border distances between two binary masks (non-zero is foreground).

    Parameters
    ----------
    ref, pred:
        Masks of one shape (2-D or 3-D).
    spacing:
        Voxel size in mm in array-axis order; a scalar means isotropic, ``None`` 1 mm.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((9, 9, 9), bool); a[2:5, 2:5, 2:5] = True
    >>> b = np.roll(a, 2, axis=0)
    >>> surface_distances(a, b, spacing=(2.0, 1.0, 1.0)).hausdorff
    4.0
    """
    return border_points(ref, pred, spacing).distances()


def _checked(d: SurfaceDistances) -> SurfaceDistances:
    if d.empty:
        raise GeometryError(
            "surface distance is undefined when a mask is empty",
            hint="use segmentation_metrics, which applies the stated empty-mask rule",
        )
    return d


def hausdorff_distance(
    ref: ArrayLike,
    pred: ArrayLike,
    spacing: float | Sequence[float] | None = None,
    percentile: float | None = None,
) -> float:
    """Symmetric Hausdorff distance in mm (001 D.7), or its ``percentile`` variant.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((10, 10), bool); a[2:4, 2:4] = True
    >>> hausdorff_distance(a, np.roll(a, 3, axis=1))
    3.0
    """
    d = _checked(surface_distances(ref, pred, spacing))
    return d.hausdorff if percentile is None else d.percentile(percentile)


def hausdorff_distance_95(ref: ArrayLike, pred: ArrayLike, spacing: float | Sequence[float] | None = None) -> float:
    """HD95 in mm: the larger of the two directed 95th percentiles (linearly interpolated).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((10, 10), bool); a[2:6, 2:6] = True
    >>> hausdorff_distance_95(a, a)
    0.0
    """
    return _checked(surface_distances(ref, pred, spacing)).hd95


def average_symmetric_surface_distance(
    ref: ArrayLike, pred: ArrayLike, spacing: float | Sequence[float] | None = None
) -> float:
    """ASSD in mm: the mean of both directions' border distances pooled.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((10, 10), bool); a[2:6, 2:6] = True
    >>> round(average_symmetric_surface_distance(a, np.roll(a, 1, axis=0)), 4)
    0.5
    """
    return _checked(surface_distances(ref, pred, spacing)).assd


def image_diagonal_mm(shape: Sequence[int], spacing: float | Sequence[float] | None = None) -> float:
    """Length in mm of the image's diagonal (its extent ``shape * spacing``): aimd's worst-case distance.

    Examples
    --------
    >>> image_diagonal_mm((3, 4), (1.0, 1.0))
    5.0
    """
    sp = as_spacing(spacing, len(shape))
    return float(np.sqrt(np.sum((np.asarray(shape, dtype=np.float64) * sp) ** 2)))
