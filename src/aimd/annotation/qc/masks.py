"""Level-1 mask content checks: values, empty masks, holes, slice gaps and jumps (001 §9.3.1 a).

* values not in the label map (non-integer, or neither a referenced ``mask_value`` nor an entry of
  the file's ``label_maps`` table) and label-map entries naming another label (§8.4 b);
* an annotation whose value does not occur in its mask (empty mask);
* holes: background voxels enclosed by the object within an axial slice;
* slice continuity (断层跳变): an object that vanishes on some slices and reappears, or whose in-plane
  position jumps between adjacent slices (little overlap and a centroid shift over the threshold).
  Labels whose taxonomy node says ``z_continuous: false`` (e.g. vertebrae) are exempt.

Example
-------
>>> import numpy as np
>>> m = np.zeros((5, 8, 8), bool); m[0:2, 2:5, 2:5] = True; m[3:5, 2:5, 2:5] = True
>>> slice_gaps(m)
[(2, 2)]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from aimd.annotation.qc.context import MaskUse, QCContext
from aimd.core.errors import AimdError
from aimd.core.findings import Finding

__all__ = ["check_mask_content", "hole_voxels", "slice_gaps", "slice_jumps"]


def slice_gaps(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of empty axial slices between the first and last non-empty slice."""
    present = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    gaps = []
    for a, b in zip(present[:-1], present[1:], strict=True):
        if b - a > 1:
            gaps.append((int(a + 1), int(b - 1)))
    return gaps


def slice_jumps(
    mask: NDArray[np.bool_], spacing_xy: tuple[float, float], *, jump_mm: float, overlap_min: float
) -> list[tuple[int, float, float]]:
    """Adjacent non-empty slices ``(k, k+1)`` whose masks barely overlap and whose centroids move.

    Returns ``(k, overlap, shift_mm)`` with overlap = |A∩B| / min(|A|, |B|).
    """
    out = []
    sx, sy = spacing_xy
    prev: NDArray[np.bool_] | None = None
    for k in range(mask.shape[0]):
        cur = mask[k]
        if prev is not None and prev.any() and cur.any():
            overlap = np.count_nonzero(prev & cur) / min(np.count_nonzero(prev), np.count_nonzero(cur))
            (y0, x0), (y1, x1) = ndimage.center_of_mass(prev), ndimage.center_of_mass(cur)
            shift = float(np.hypot((x1 - x0) * sx, (y1 - y0) * sy))
            if overlap < overlap_min and shift > jump_mm:
                out.append((k - 1, float(overlap), shift))
        prev = cur
    return out


def hole_voxels(mask: NDArray[np.bool_], background: NDArray[np.bool_]) -> tuple[int, list[int]]:
    """Background voxels enclosed by ``mask`` within axial slices: ``(count, slices)``.

    A hole counts for this object only when it borders the object (a gap inside a neighbouring
    structure that this object surrounds belongs to that structure).
    """
    total, slices = 0, []
    zs = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    for k in zs:
        candidates = ndimage.binary_fill_holes(mask[k]) & ~mask[k] & background[k]
        if not candidates.any():
            continue
        parts, n_parts = ndimage.label(candidates)
        touching = np.unique(parts[ndimage.binary_dilation(mask[k]) & candidates])
        n = int(np.count_nonzero(np.isin(parts, touching[touching > 0]))) if n_parts else 0
        if n:
            total += n
            slices.append(int(k))
    return total, slices


def _values(ctx: QCContext, use: MaskUse, arr: NDArray[np.generic], allowed: set[int]) -> list[Finding]:
    rel = use.data.mask_file
    if arr.dtype.kind == "f":
        bad = arr[np.isfinite(arr) & (arr != np.round(arr))]
        if bad.size or not np.all(np.isfinite(arr)):
            return [
                ctx.finding(
                    "MASK_VALUE_INVALID",
                    "error",
                    "001 §9.3.1 a",
                    f"mask holds non-integer values (e.g. {bad[:3].tolist()})",
                    "store masks as integer labels",
                    annotation=use.annotation.id,
                    file=rel,
                )
            ]
    values = {int(v) for v in np.unique(arr)}
    extra = sorted(values - allowed)
    if not extra:
        return []
    counts = {v: int(np.count_nonzero(arr == v)) for v in extra[:5]}
    return [
        ctx.finding(
            "MASK_VALUE_NOT_IN_LABEL_MAP",
            "error",
            "001 §9.3.1 a",
            f"mask values {extra} are neither an annotation's mask_value nor in the label map (voxels: {counts})",
            "relabel or remove those voxels, or add them to label_maps",
            file=rel,
            values=extra,
        )
    ]


def _object_checks(ctx: QCContext, use: MaskUse, arr: NDArray[np.generic], spacing: tuple[float, ...]) -> list[Finding]:
    ann, rel, value = use.annotation, use.data.mask_file, use.data.mask_value
    obj = arr == value
    if not obj.any():
        return [
            ctx.finding(
                "MASK_EMPTY",
                "error",
                "001 §9.3.1 a",
                f"value {value} does not occur in the mask: the {use.role} mask of {ann.id} is empty",
                "draw the object or delete the annotation",
                annotation=ann.id,
                file=rel,
            )
        ]
    out = []
    zz, yy, xx = (slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(obj))
    box = obj[zz, yy, xx]
    n, slices = hole_voxels(box, arr[zz, yy, xx] == 0)
    if n >= ctx.config.hole_min_voxels:
        ks = [k + zz.start for k in slices]
        out.append(
            ctx.finding(
                "MASK_HOLES",
                "error",
                "001 §9.3.1 a",
                f"{n} background voxel(s) enclosed by {ann.id} on slice(s) {ks[:10]}",
                "fill the holes or label the enclosed structure",
                annotation=ann.id,
                file=rel,
                slice=ks[0],
                voxels=n,
            )
        )
    node = ctx.taxonomy.get(ann.label_code)
    if arr.shape[0] > 1 and (node is None or node.z_continuous):
        for a, b in slice_gaps(box):
            out.append(
                ctx.finding(
                    "MASK_SLICE_GAP",
                    "error",
                    "001 §9.3.1 a",
                    f"{ann.id} vanishes on slices {a + zz.start}–{b + zz.start} and reappears",
                    "draw the missing slices or split the object",
                    annotation=ann.id,
                    file=rel,
                    slice=a + zz.start,
                )
            )
        for k, overlap, shift in slice_jumps(
            box, (spacing[0], spacing[1]), jump_mm=ctx.config.slice_jump_mm, overlap_min=ctx.config.slice_overlap_min
        ):
            out.append(
                ctx.finding(
                    "MASK_SLICE_JUMP",
                    "error",
                    "001 §9.3.1 a",
                    f"{ann.id} jumps {shift:.1f} mm between slices {k + zz.start} and "
                    f"{k + zz.start + 1} (overlap {overlap:.2f})",
                    "redraw the displaced slice",
                    annotation=ann.id,
                    file=rel,
                    slice=k + zz.start,
                )
            )
    return out


def check_mask_content(ctx: QCContext) -> list[Finding]:
    """Values, emptiness, holes and slice continuity of every final mask (not of model suggestions)."""
    pkg = ctx.package
    uses = [u for u in ctx.mask_uses() if u.path.is_file()]
    tables = {str(ctx.source.resolve(rel).resolve()): table for rel, table in pkg.label_maps.items()}
    allowed: dict[str, set[int]] = {}
    for u in uses:
        allowed.setdefault(str(u.path), {0} | set(tables.get(str(u.path.resolve()), {}))).add(u.data.mask_value)
    out: list[Finding] = []
    for ann in pkg.annotations:
        table = pkg.label_maps.get(ann.data.mask_file or "", {})
        code = table.get(ann.data.mask_value)
        if code is not None and code != ann.label_code:
            out.append(
                ctx.finding(
                    "LABEL_MAP_MISMATCH",
                    "error",
                    "001 §8.4 b",
                    f"the label map of {ann.data.mask_file} says value {ann.data.mask_value} is {code}, "
                    f"the annotation says {ann.label_code}",
                    "fix label_maps or the mask_value",
                    annotation=ann.id,
                    file=ann.data.mask_file,
                )
            )
    checked_values: set[str] = set()
    for use in (u for u in uses if u.role == "final"):
        try:
            vol = ctx.masks.get(use.path, use.image)
        except AimdError:
            continue  # reported by the geometry checks
        arr = np.asarray(vol.array)
        if str(use.path) not in checked_values:
            checked_values.add(str(use.path))
            out += _values(ctx, use, arr, allowed[str(use.path)])
        out += _object_checks(ctx, use, arr, vol.spacing)
    return out
