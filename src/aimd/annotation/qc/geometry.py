"""Level-1 geometry checks: image files vs the package's image, masks vs image grid, masks out of bounds.

001 §9.3.1 a (spatial dimensions and direction matrix of image and mask agree), §8.4 a (one coordinate
system, direction and spacing correct), §6.5.1 (mask out of bounds) and §6.6.2 (dimension, coordinate
and orientation checks against the image).

Example
-------
>>> import numpy as np
>>> image = Volume(np.zeros((4, 8, 8)), spacing=(1.0, 1.0, 2.0))
>>> mask = Volume(np.ones((4, 8, 8), np.uint8), spacing=(1.0, 1.0, 2.0), origin=(3.0, 0.0, 0.0))
>>> out_of_bounds_voxels(mask, image)  # the 3 rightmost columns fall outside
96
"""

from __future__ import annotations

import numpy as np

from aimd.annotation.masks import grid_differences, image_grid
from aimd.annotation.qc.context import QCContext
from aimd.annotation.schema import FileRole
from aimd.core.errors import AimdError
from aimd.core.findings import Finding
from aimd.imaging.volume import Volume

__all__ = ["check_image_files", "check_mask_geometry", "out_of_bounds_voxels"]

_GEOMETRY_HINT = {
    "shape": "the mask must have the image's size; re-export it on the image grid",
    "spacing": "resample the mask onto the image grid (nearest neighbour) and record the resampling",
    "origin": "the mask is shifted: re-export it with the image's origin",
    "direction": "the mask is flipped or rotated: re-export it with the image's direction matrix",
}


def check_image_files(ctx: QCContext) -> list[Finding]:
    """Every image file (NIfTI, DICOM series) has the geometry the package states (001 §6.6.2)."""
    out = []
    for image in ctx.package.images():
        for ref in image.files:
            if ref.role not in (FileRole.IMAGE, FileRole.DICOM_SERIES):
                continue
            path = ctx.source.resolve(ref.path)
            if not path.exists():
                continue  # reported by the file checks
            vol = ctx.image_volume(path)
            if isinstance(vol, AimdError):
                out.append(
                    ctx.finding(
                        "IMAGE_UNREADABLE",
                        "error",
                        "001 §6.6.2",
                        f"image file unreadable: {vol}",
                        "replace the file with a readable DICOM series or NIfTI",
                        file=ref.path,
                        image=image.uid,
                    )
                )
                continue
            for diff in grid_differences(vol, image, ctx.tolerance):
                out.append(
                    ctx.finding(
                        "IMAGE_GEOMETRY_MISMATCH",
                        "error",
                        "001 §6.6.2",
                        f"image file {diff.field} {diff.got} differs from the package's image {diff.field} "
                        f"{diff.expected}",
                        "rewrite image.shape/spacing/origin/direction from the image file",
                        file=ref.path,
                        image=image.uid,
                        field=diff.field,
                    )
                )
    return out


def out_of_bounds_voxels(mask: Volume, image: Volume) -> int:
    """Foreground voxels of ``mask`` whose centres fall outside ``image``'s extent."""
    zyx = np.argwhere(np.asarray(mask.array) != 0)
    if zyx.size == 0:
        return 0
    idx = image.world_to_index(mask.index_to_world(zyx[:, ::-1].astype(np.float64)))
    size = np.asarray(image.size_xyz, dtype=np.float64)
    outside = np.any((idx < -0.5) | (idx > size - 0.5), axis=1)
    return int(np.count_nonzero(outside))


def check_mask_geometry(ctx: QCContext) -> list[Finding]:
    """Each mask file lies on the grid of the image it annotates; none of it lies outside (§9.3.1 a, §6.5.1)."""
    out = []
    seen: set[tuple[str, str]] = set()
    for use in ctx.mask_uses():
        key = (str(use.path), use.image.uid)
        if key in seen or not use.path.is_file():
            continue
        seen.add(key)
        rel = use.data.mask_file
        try:
            mask = ctx.masks.get(use.path, use.image)
        except AimdError as err:
            out.append(
                ctx.finding(
                    "MASK_UNREADABLE",
                    "error",
                    "001 §9.3.1 a",
                    f"mask unreadable: {err.message}",
                    "write masks as NIfTI or DICOM SEG",
                    annotation=use.annotation.id,
                    file=rel,
                )
            )
            continue
        diffs = grid_differences(mask, use.image, ctx.tolerance)
        for diff in diffs:
            out.append(
                ctx.finding(
                    f"MASK_{diff.field.upper()}_MISMATCH",
                    "error",
                    "001 §9.3.1 a",
                    f"mask {diff.field} {diff.got} differs from image {use.image.uid} {diff.field} {diff.expected}",
                    _GEOMETRY_HINT[diff.field],
                    annotation=use.annotation.id,
                    file=rel,
                    field=diff.field,
                )
            )
        if diffs:
            n = out_of_bounds_voxels(mask, image_grid(use.image))
            if n:
                out.append(
                    ctx.finding(
                        "MASK_OUT_OF_BOUNDS",
                        "error",
                        "001 §6.5.1",
                        f"{n} labelled voxel(s) of the mask lie outside image {use.image.uid}",
                        "crop the mask to the image extent or fix its geometry",
                        annotation=use.annotation.id,
                        file=rel,
                        voxels=n,
                    )
                )
    return out
