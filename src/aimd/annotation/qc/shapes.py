"""Level-1 checks of boxes, polygons and points: inside their image, well formed (001 §6.5.1, §9.3.1 a).

Coordinates are voxel-edge coordinates (voxel ``i`` spans ``[i, i+1)``), so a box is inside when
``0 <= x0 < x1 <= size_x`` (and likewise for y, z).

Example
-------
>>> outside_axes([-1.0, 2.0, 5.0, 9.0], (8, 8, 1))
['x', 'y']
"""

from __future__ import annotations

from collections.abc import Sequence

from aimd.annotation.qc.context import QCContext
from aimd.annotation.schema import Annotation, AnnotationType, ImageRef
from aimd.core.findings import Finding

__all__ = ["check_shapes", "outside_axes"]

_AXES = "xyz"


def outside_axes(corners: Sequence[float], shape: Sequence[int]) -> list[str]:
    """Axis names of box corners ``[lo..., hi...]`` outside ``[0, size]`` (a point is given as ``p + p``)."""
    half = len(corners) // 2
    out = []
    for i, value in enumerate(corners):
        axis = i % half
        if value < 0 or value > shape[axis]:
            out.append(_AXES[axis])
    return out


def _slice_ok(ctx: QCContext, ann: Annotation, image: ImageRef, code: str) -> list[Finding]:
    k = ann.data.slice_index
    if k is None:
        if image.shape[2] > 1:
            return [
                ctx.finding(
                    code,
                    "error",
                    "001 §6.5.1",
                    f"2-D {ann.type.value} on 3-D image {image.uid} needs data.slice_index",
                    "give the slice (z index) it is drawn on",
                    annotation=ann.id,
                )
            ]
        return []
    if k >= image.shape[2]:
        return [
            ctx.finding(
                "SLICE_OUT_OF_BOUNDS",
                "error",
                "001 §6.5.1",
                f"slice_index {k} is outside image {image.uid} ({image.shape[2]} slices)",
                "use a slice index in [0, number of slices)",
                annotation=ann.id,
                slice=k,
            )
        ]
    return []


def _bbox(ctx: QCContext, ann: Annotation, image: ImageRef) -> list[Finding]:
    box = list(ann.data.bbox or [])
    half = len(box) // 2
    out = []
    if any(box[i] >= box[i + half] for i in range(half)):
        out.append(
            ctx.finding(
                "BBOX_INVALID",
                "error",
                "001 §6.5.1",
                f"bbox {box} has a corner not below the other (need x0 < x1, y0 < y1 ...)",
                "store [x0, y0, (z0,) x1, y1, (z1)] with lo < hi",
                annotation=ann.id,
            )
        )
    bad = outside_axes(box, image.shape)
    if bad:
        out.append(
            ctx.finding(
                "BBOX_OUT_OF_BOUNDS",
                "error",
                "001 §6.5.1",
                f"bbox {box} leaves image {image.uid} (size x,y,z {list(image.shape)}) along {sorted(set(bad))}",
                "clip the box to the image",
                annotation=ann.id,
            )
        )
    if half == 2:
        out += _slice_ok(ctx, ann, image, "BBOX_SLICE_MISSING")
    return out


def _polygon(ctx: QCContext, ann: Annotation, image: ImageRef) -> list[Finding]:
    out = _slice_ok(ctx, ann, image, "POLYGON_SLICE_MISSING")
    bad = [i for i, (x, y) in enumerate(ann.data.polygon or []) if outside_axes([x, y, x, y], image.shape)]
    if bad:
        out.append(
            ctx.finding(
                "POLYGON_OUT_OF_BOUNDS",
                "error",
                "001 §6.5.1",
                f"polygon vertices {bad[:10]} lie outside image {image.uid}",
                "move the vertices inside the image",
                annotation=ann.id,
            )
        )
    return out


def _point(ctx: QCContext, ann: Annotation, image: ImageRef) -> list[Finding]:
    p = list(ann.data.point or [])
    out = _slice_ok(ctx, ann, image, "POINT_SLICE_MISSING") if len(p) == 2 else []
    if outside_axes(p + p, image.shape):
        out.append(
            ctx.finding(
                "POINT_OUT_OF_BOUNDS",
                "error",
                "001 §6.5.1",
                f"point {p} lies outside image {image.uid} (size x,y,z {list(image.shape)})",
                "move the point inside the image",
                annotation=ann.id,
            )
        )
    return out


def check_shapes(ctx: QCContext) -> list[Finding]:
    """Annotations name a known image; boxes, polygons and points are well formed and inside it."""
    out = []
    for ann in ctx.package.annotations:
        image = ctx.package.image_of(ann)
        if image is None:
            out.append(
                ctx.finding(
                    "ANNOTATION_IMAGE_UNKNOWN",
                    "error",
                    "001 §6.5.1",
                    f"image_uid {ann.image_uid!r} is neither the package image nor a related image",
                    "add the image to related_images or fix image_uid",
                    annotation=ann.id,
                )
            )
            continue
        if ann.type is AnnotationType.BBOX:
            out += _bbox(ctx, ann, image)
        elif ann.type is AnnotationType.POLYGON:
            out += _polygon(ctx, ann, image)
        elif ann.type is AnnotationType.POINT:
            out += _point(ctx, ann, image)
    return out
