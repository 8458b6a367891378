"""Lesions with exact masks: solid and ground-glass lung nodules, liver tumours (001 §8.1 b).

Each lesion is a sphere in world millimetres. Its mask is the set of voxels whose centre lies
within the radius — the same set whose HU the lesion sets — so mask and image agree exactly;
an ill-defined margin only softens the HU transition (about 2 mm wide), never the mask. Lesions
lie wholly inside their organ (1 mm clear of its border) and do not touch one another.

Example
-------
>>> import numpy as np
>>> from aimd.phantoms.anatomy import make_grid, render_anatomy, sample_anatomy
>>> from aimd.phantoms.sites import SITE_PROFILES
>>> rng = np.random.default_rng(3)
>>> grid = make_grid(64, SITE_PROFILES[0], rng)
>>> anat = sample_anatomy(rng)
>>> hu, labels = render_anatomy(grid, anat, rng)
>>> lesions = place_lesions(grid, anat, labels, rng, plan=["liver_tumour"])
>>> [(l.kind, l.organ) for l in lesions]
[('liver_tumour', 'liver')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.phantoms.anatomy import LABEL_CODES, Anatomy, Grid, _texture
from aimd.phantoms.locations import Place, liver_place, lung_place

LESION_TYPES: dict[str, dict[str, Any]] = {
    "solid_nodule": {"label": 5, "organ": "lung", "en": "solid nodule", "zh": "实性结节", "d_mm": (4, 30)},
    "ground_glass_nodule": {
        "label": 5,
        "organ": "lung",
        "en": "ground-glass nodule",
        "zh": "磨玻璃结节",
        "d_mm": (6, 25),
    },
    "liver_tumour": {"label": 6, "organ": "liver", "en": "liver tumour", "zh": "肝脏肿瘤", "d_mm": (8, 30)},
}
_ORGAN_LABEL = {"lung": 2, "liver": 3}
_EDGE_MM = {"well_defined": 0.5, "ill_defined": 2.0}
_CLEARANCE_MM = 1.0
_TRIES_PER_SIZE = 40


@dataclass(frozen=True)
class Lesion:
    """One spherical lesion: where, how big, how dense, which lobe/segment."""

    lesion_id: str
    instance: int
    kind: str
    centre_ijk: tuple[float, float, float]
    diameter_mm: int
    hu: float
    density: str
    margin: str
    place: Place

    @property
    def label(self) -> int:
        return int(LESION_TYPES[self.kind]["label"])

    @property
    def organ(self) -> str:
        return str(LESION_TYPES[self.kind]["organ"])

    @property
    def radius_mm(self) -> float:
        return self.diameter_mm / 2.0

    @property
    def analytic_volume_ml(self) -> float:
        return 4.0 / 3.0 * math.pi * self.radius_mm**3 / 1000.0


def sample_plan(rng: np.random.Generator) -> list[str]:
    """Lesion kinds for one case; about one case in five has none."""
    if rng.random() < 0.2:
        return []
    n_lung = int(rng.choice(4, p=[0.3, 0.4, 0.2, 0.1]))
    n_liver = int(rng.choice(3, p=[0.55, 0.35, 0.10]))
    if n_lung + n_liver == 0:
        n_lung = 1
    kinds = ["ground_glass_nodule" if rng.random() < 0.35 else "solid_nodule" for _ in range(n_lung)]
    return kinds + ["liver_tumour"] * n_liver


def _sphere(
    grid: Grid, centre: NDArray[np.float64], radius_mm: float, pad_mm: float = 0.0
) -> tuple[tuple[slice, slice, slice], NDArray[np.float64]] | None:
    """Box (z, y, x slices) around the sphere + pad and the distances (mm) in it; None if off-grid."""
    sx, sy, sz = grid.spacing
    lo = [math.ceil(c - (radius_mm + pad_mm) / s) for c, s in zip(centre, (sx, sy, sz), strict=True)]
    hi = [math.floor(c + (radius_mm + pad_mm) / s) for c, s in zip(centre, (sx, sy, sz), strict=True)]
    if min(lo) < 0 or max(hi) > grid.size - 1:
        return None
    i = (np.arange(lo[0], hi[0] + 1) - centre[0]) * sx
    j = (np.arange(lo[1], hi[1] + 1) - centre[1]) * sy
    k = (np.arange(lo[2], hi[2] + 1) - centre[2]) * sz
    dist = np.sqrt(k[:, None, None] ** 2 + j[None, :, None] ** 2 + i[None, None, :] ** 2)
    box = (slice(lo[2], hi[2] + 1), slice(lo[1], hi[1] + 1), slice(lo[0], hi[0] + 1))
    return box, dist


def sphere_mask(grid: Grid, centre_ijk: tuple[float, float, float], radius_mm: float) -> NDArray[np.bool_]:
    """Full-grid mask of voxels whose centre is within ``radius_mm`` of ``centre_ijk`` (x, y, z index)."""
    mask = np.zeros(grid.shape, bool)
    found = _sphere(grid, np.asarray(centre_ijk, np.float64), radius_mm)
    if found is not None:
        box, dist = found
        mask[box] = dist <= radius_mm
    return mask


def _attributes(kind: str, anat: Anatomy, rng: np.random.Generator) -> tuple[float, str, str]:
    """(target HU, density, margin) for one lesion kind."""
    if kind == "solid_nodule":
        return float(rng.uniform(20, 55)), "solid", ("ill_defined" if rng.random() < 0.35 else "well_defined")
    if kind == "ground_glass_nodule":
        return float(rng.uniform(-650, -550)), "ground_glass", ("ill_defined" if rng.random() < 0.6 else "well_defined")
    margin = "ill_defined" if rng.random() < 0.4 else "well_defined"
    if rng.random() < 0.6:
        return anat.hu_liver - float(rng.uniform(25, 40)), "hypodense", margin
    return anat.hu_liver + float(rng.uniform(25, 45)), "hyperdense", margin


def place_lesions(
    grid: Grid, anat: Anatomy, labels: NDArray[np.uint8], rng: np.random.Generator, plan: list[str] | None = None
) -> list[Lesion]:
    """Place the ``plan`` (default: :func:`sample_plan`) inside the organs of ``labels``.

    A lesion that does not fit is shrunk by 20 % steps (never below 4 mm) and dropped if it still
    does not fit, so tiny grids get fewer or smaller lesions.
    """
    kinds = sample_plan(rng) if plan is None else plan
    candidates = {organ: np.flatnonzero(labels == value) for organ, value in _ORGAN_LABEL.items()}
    placed: list[Lesion] = []
    for kind in kinds:
        spec = LESION_TYPES[kind]
        organ_label = _ORGAN_LABEL[spec["organ"]]
        pool = candidates[spec["organ"]]
        lo, hi = spec["d_mm"]
        diameter = int(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))))
        hu, density, margin = _attributes(kind, anat, rng)
        centre = _find_centre(grid, labels, organ_label, pool, placed, diameter, rng)
        while centre is None and diameter > 4:
            diameter = max(4, int(diameter * 0.8))
            centre = _find_centre(grid, labels, organ_label, pool, placed, diameter, rng)
        if centre is None:
            continue
        u, v, w = grid.normalised(centre)
        place = lung_place(anat, u, v, w) if spec["organ"] == "lung" else liver_place(anat, u, v, w)
        n = len(placed) + 1
        centre_t = (float(centre[0]), float(centre[1]), float(centre[2]))
        placed.append(Lesion(f"L{n}", n, kind, centre_t, diameter, round(hu, 1), density, margin, place))
    return placed


def _find_centre(
    grid: Grid,
    labels: NDArray[np.uint8],
    organ_label: int,
    pool: NDArray[np.intp],
    placed: list[Lesion],
    diameter: int,
    rng: np.random.Generator,
) -> NDArray[np.float64] | None:
    if pool.size == 0:
        return None
    radius = diameter / 2.0
    spacing = np.asarray(grid.spacing)
    for _ in range(_TRIES_PER_SIZE):
        k, j, i = np.unravel_index(int(pool[rng.integers(pool.size)]), grid.shape)
        centre = np.array([i, j, k], np.float64) + rng.uniform(-0.5, 0.5, 3)
        if any(
            np.linalg.norm((centre - np.asarray(p.centre_ijk)) * spacing) < radius + p.radius_mm + 2.0 for p in placed
        ):
            continue
        found = _sphere(grid, centre, radius + _CLEARANCE_MM)
        if found is None:
            continue
        box, dist = found
        if np.all(labels[box][dist <= radius + _CLEARANCE_MM] == organ_label):
            return centre
    return None


def render_lesions(
    grid: Grid, lesions: list[Lesion], hu: NDArray[np.float32], labels: NDArray[np.uint8], rng: np.random.Generator
) -> NDArray[np.uint8]:
    """Draw lesions into ``hu`` and ``labels`` in place; return the instance mask (value = instance)."""
    instances = np.zeros(grid.shape, np.uint8)
    texture_amp = {"solid_nodule": 8.0, "ground_glass_nodule": 35.0, "liver_tumour": 6.0}
    for lesion in lesions:
        pad = _EDGE_MM[lesion.margin]
        found = _sphere(grid, np.asarray(lesion.centre_ijk), lesion.radius_mm, pad_mm=pad)
        if found is None:
            raise ValueError(f"lesion {lesion.lesion_id} does not fit on the grid; use place_lesions")
        box, dist = found
        inside = dist <= lesion.radius_mm
        weight = np.clip(0.5 - (dist - lesion.radius_mm) / _EDGE_MM[lesion.margin], 0.0, 1.0)
        tex = _texture(dist.shape, rng, cell=4) * texture_amp[lesion.kind]
        target = (lesion.hu + tex).astype(np.float32)
        region = hu[box]
        hu[box] = region * (1 - weight) + target * weight
        labels[box][inside] = lesion.label
        instances[box][inside] = lesion.instance
    return instances


def lesion_records(
    grid: Grid, lesions: list[Lesion], instances: NDArray[np.uint8], ct: NDArray[np.int16]
) -> list[dict[str, Any]]:
    """lesions.json entries: geometry, size, volume measured from the mask, place, density, margin."""
    volume = grid.volume(instances, modality=None)
    voxel_ml = float(np.prod(grid.spacing)) / 1000.0
    records = []
    for lesion in lesions:
        mask = instances == lesion.instance
        count = int(mask.sum())
        kk, jj, ii = np.nonzero(mask)
        spec = LESION_TYPES[lesion.kind]
        records.append(
            {
                "id": lesion.lesion_id,
                "instance": lesion.instance,
                "type": lesion.kind,
                "type_en": spec["en"],
                "type_zh": spec["zh"],
                "label": lesion.label,
                "label_code": LABEL_CODES[lesion.label],
                "organ": lesion.organ,
                "centre_voxel": list(lesion.centre_ijk),  # (i, j, k) = (x, y, z) index, full precision
                "centre_lps_mm": [float(c) for c in volume.index_to_world(lesion.centre_ijk)],
                "diameter_mm": lesion.diameter_mm,
                "radius_mm": lesion.radius_mm,
                "voxel_count": count,
                "volume_ml": round(count * voxel_ml, 5),
                "volume_ml_analytic": round(lesion.analytic_volume_ml, 5),
                **lesion.place.to_dict(),
                "density": lesion.density,
                "hu_target": lesion.hu,
                "hu_mean": round(float(ct[mask].mean()), 2) if count else None,
                "margin": lesion.margin,
                "bbox_voxel": {
                    "min": [int(ii.min()), int(jj.min()), int(kk.min())],
                    "max": [int(ii.max()), int(jj.max()), int(kk.max())],
                }
                if count
                else None,
            }
        )
    return records


__all__ = [
    "LESION_TYPES",
    "Lesion",
    "lesion_records",
    "place_lesions",
    "render_lesions",
    "sample_plan",
    "sphere_mask",
]
