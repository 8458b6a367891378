"""Digitally reconstructed radiograph (DRR): an AP projection of the phantom CT.

Attenuation comes from HU (``mu = mu_water * (1 + HU / 1000)``, Beer–Lambert), integrated along
the antero-posterior (y) axis with a parallel beam, so image columns keep the CT's x spacing and
rows are resampled along z to square pixels. Quantum noise follows the site's photon count. The
stored value is the log signal ``-ln(I / I0)`` scaled to 12 bits: bone bright, lungs dark
(MONOCHROME2, Pixel Intensity Relationship LOG). Row 0 is the most superior row, column 0 the
patient's right, as a chest film is read.

Example
-------
>>> import numpy as np
>>> from aimd.phantoms.anatomy import Grid
>>> grid = Grid(4, (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
>>> ct = np.zeros((4, 4, 4), np.int16)
>>> drr = render_drr(ct, grid, np.random.default_rng(0), photons=1e9)
>>> drr.image.shape, drr.pixel_spacing
((7, 4), (1.0, 1.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.phantoms.anatomy import Grid
from aimd.phantoms.lesions import Lesion

MU_WATER_PER_MM = 0.0195  # linear attenuation of water near 60 keV effective energy (1/mm)
DX_BITS = 12


@dataclass(frozen=True)
class Radiograph:
    """A DRR image and the mapping from CT world coordinates to its pixels."""

    image: NDArray[np.uint16]
    pixel_spacing: tuple[float, float]
    z_top_mm: float
    x_left_mm: float
    p_ref: float
    photons: float

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.image.shape[0]), int(self.image.shape[1]))

    def world_to_pixel(self, x_mm: float, z_mm: float) -> tuple[float, float]:
        """Continuous (column, row) of the pixel centre grid for world x and z (0 = centre of pixel 0)."""
        row_sp, col_sp = self.pixel_spacing
        return (x_mm - self.x_left_mm) / col_sp, (self.z_top_mm - z_mm) / row_sp


def render_drr(ct_hu: NDArray[np.int16], grid: Grid, rng: np.random.Generator, photons: float) -> Radiograph:
    """Project ``ct_hu`` (z, y, x) antero-posteriorly into a 12-bit radiograph."""
    sx, sy, sz = grid.spacing
    mu = ct_hu.astype(np.float32)
    mu *= np.float32(MU_WATER_PER_MM / 1000.0)
    mu += np.float32(MU_WATER_PER_MM)
    np.maximum(mu, 0.0, out=mu)
    line = mu.sum(axis=1, dtype=np.float64) * sy  # (z, x) line integrals
    nz = line.shape[0]
    pixel = sx
    rows = int(np.floor((nz - 1) * sz / pixel + 1e-9)) + 1
    k = (nz - 1) - np.arange(rows) * pixel / sz  # slice coordinate of each row, top = highest z
    k0 = np.clip(np.floor(k).astype(int), 0, max(nz - 2, 0))
    frac = (k - k0)[:, None]
    upper = line[np.minimum(k0 + 1, nz - 1)]
    resampled = line[k0] * (1 - frac) + upper * frac
    expected = photons * np.exp(-resampled)
    counts = expected + np.sqrt(expected) * rng.standard_normal(expected.shape)
    log_signal = -np.log(np.maximum(counts, 1.0) / photons)
    p_ref = MU_WATER_PER_MM * grid.size * sy * 0.9
    levels = 2**DX_BITS - 1
    image = np.rint(np.clip(log_signal / p_ref, 0.0, 1.0) * levels).astype(np.uint16)
    z_top = grid.origin[2] + (nz - 1) * sz
    return Radiograph(image, (pixel, pixel), z_top, grid.origin[0], p_ref, photons)


def project_box(
    drr: Radiograph, grid: Grid, centre_ijk: tuple[float, float, float], radius_mm: float
) -> dict[str, Any]:
    """The box of a sphere's shadow, in pixel-edge coordinates (COCO: pixel (r, c) spans [c, c+1))."""
    sx, _, sz = grid.spacing
    x_mm = grid.origin[0] + centre_ijk[0] * sx
    z_mm = grid.origin[2] + centre_ijk[2] * sz
    col, row = drr.world_to_pixel(x_mm, z_mm)
    row_sp, col_sp = drr.pixel_spacing
    height, width = drr.shape
    x0 = max(0.0, col + 0.5 - radius_mm / col_sp)
    x1 = min(float(width), col + 0.5 + radius_mm / col_sp)
    y0 = max(0.0, row + 0.5 - radius_mm / row_sp)
    y1 = min(float(height), row + 0.5 + radius_mm / row_sp)
    r4 = lambda v: round(float(v), 3)  # noqa: E731
    return {
        "xyxy": [r4(x0), r4(y0), r4(x1), r4(y1)],
        "bbox": [r4(x0), r4(y0), r4(x1 - x0), r4(y1 - y0)],
        "centre_px": [r4(col + 0.5), r4(row + 0.5)],
    }


def dx_boxes(drr: Radiograph, grid: Grid, lesions: list[Lesion]) -> dict[str, Any]:
    """dx_boxes.json: one box per lung nodule, projected from its 3-D sphere."""
    boxes = []
    for lesion in lesions:
        if lesion.organ != "lung":
            continue
        boxes.append(
            {
                "lesion_id": lesion.lesion_id,
                "type": lesion.kind,
                "diameter_mm": lesion.diameter_mm,
                "lobe": lesion.place.lobe,
                **project_box(drr, grid, lesion.centre_ijk, lesion.radius_mm),
            }
        )
    height, width = drr.shape
    return {
        "image": "dx.dcm",
        "rows": height,
        "columns": width,
        "pixel_spacing_mm": list(drr.pixel_spacing),
        "coordinates": "pixels; origin at the top-left corner of the top-left pixel; bbox = [x, y, width, "
        "height], xyxy = [x0, y0, x1, y1]; x = column (patient right to left), y = row "
        "(head to feet)",
        "projection": {
            "geometry": "parallel",
            "view": "AP",
            "mu_water_per_mm": MU_WATER_PER_MM,
            "photons_per_pixel": drr.photons,
            "log_signal_full_scale": round(drr.p_ref, 6),
            "bits": DX_BITS,
        },
        "boxes": boxes,
    }


__all__ = ["DX_BITS", "MU_WATER_PER_MM", "Radiograph", "dx_boxes", "project_box", "render_drr"]
