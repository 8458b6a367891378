"""A synthetic chest/upper-abdomen CT in Hounsfield units with an exact label mask.

The torso lives in normalised coordinates of the field of view — ``u`` (x, towards patient left),
``v`` (y, towards posterior), both in [-1, 1] of the half field of view, and ``w`` (z, 0 at the
lowest slice, 1 at the top) — so it fills any grid size and spacing. Structures: air, a body
ellipse with a subcutaneous fat layer, two lungs (the liver dome and the heart indent them),
trachea, heart, aorta, liver, kidneys, a segmented spine and ribs. Labels follow
:data:`LABEL_MAP`; every voxel's label is the structure its HU was drawn from (001 §8.1 a, §8.2).

Example
-------
>>> import numpy as np
>>> from aimd.phantoms.sites import SITE_PROFILES
>>> rng = np.random.default_rng(0)
>>> grid = make_grid(32, SITE_PROFILES[0], rng)
>>> hu, labels = render_anatomy(grid, sample_anatomy(rng), rng)
>>> sorted(set(np.unique(labels).tolist()) - {0})
[1, 2, 3, 4]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

from aimd.imaging.volume import Volume
from aimd.phantoms.sites import SiteProfile

# 001 §8.2.2 a: one unique code per structure; the integer is the voxel value in labels.nii.gz.
LABEL_MAP: dict[int, str] = {
    0: "background",
    1: "body",
    2: "lung",
    3: "liver",
    4: "spine_bone",
    5: "lung_nodule",
    6: "liver_tumour",
}
LABEL_CODES: dict[int, str] = {k: v.upper() for k, v in LABEL_MAP.items()}
HU_MIN, HU_MAX = -1024, 3071


@dataclass(frozen=True)
class Grid:
    """The CT grid: ``size`` voxels per axis, spacing ``(x, y, z)`` mm, LPS origin, identity direction."""

    size: int
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.size, self.size, self.size)

    def axes(self) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        """Normalised ``u`` (x), ``v`` (y) and ``w`` (z) of voxel centres, one vector each."""
        n = self.size
        centred = (np.arange(n, dtype=np.float32) - (n - 1) / 2) / (n / 2)
        return centred, centred.copy(), np.linspace(0.0, 1.0, n, dtype=np.float32)

    def normalised(self, ijk: NDArray[np.float64]) -> NDArray[np.float64]:
        """``(u, v, w)`` of continuous voxel index ``(i, j, k)``."""
        n = self.size
        i, j, k = np.asarray(ijk, dtype=np.float64)
        return np.array([(i - (n - 1) / 2) / (n / 2), (j - (n - 1) / 2) / (n / 2), k / (n - 1)])

    def volume(self, array: NDArray[Any], modality: str | None = "CT") -> Volume:
        """Wrap ``array`` (z, y, x) with this grid's geometry."""
        return Volume(array, spacing=self.spacing, origin=self.origin, modality=modality)


def make_grid(size: int, site: SiteProfile, rng: np.random.Generator) -> Grid:
    """A grid with the site's spacing (in-plane jittered ±3 % per case, like a per-patient FOV)."""
    pixel = round(site.pixel_mm * float(rng.uniform(0.97, 1.03)), 3)
    spacing = (pixel, pixel, site.slice_mm)
    table_z = round(float(rng.uniform(-420.0, -380.0)), 2)
    origin = (-(size - 1) / 2 * pixel, -(size - 1) / 2 * pixel, table_z)
    return Grid(size, spacing, (round(origin[0], 4), round(origin[1], 4), origin[2]))


@dataclass(frozen=True)
class Anatomy:
    """Per-case anatomical parameters (normalised units) and tissue HU means."""

    body_a: float
    body_b: float
    w_base: float
    w_apex: float
    lung_u: float
    lung_au: float
    lung_av: float
    liver_u: float
    liver_au: float
    liver_av: float
    liver_aw: float
    heart_u: float
    spine_v: float
    n_vertebrae: float
    vertebra_phase: float
    hu_fat: float
    hu_soft: float
    hu_lung: float
    hu_liver: float
    hu_bone: float
    hu_marrow: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 6) for k, v in asdict(self).items()}

    def lung_centre(self, side: int) -> tuple[float, float]:
        """(u, v) centre of the right (side -1) or left (side +1) lung."""
        return side * self.lung_u * self.body_a, -0.05 * self.body_b

    def liver_centre(self) -> tuple[float, float, float]:
        return self.liver_u * self.body_a, 0.0, self.w_base - 0.03


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy and tissue densities."""
    u = rng.uniform
    return Anatomy(
        body_a=u(0.80, 0.90),
        body_b=u(0.56, 0.66),
        w_base=u(0.40, 0.48),
        w_apex=u(0.93, 0.98),
        lung_u=u(0.34, 0.38),
        lung_au=u(0.28, 0.31),
        lung_av=u(0.58, 0.64),
        liver_u=u(-0.38, -0.32),
        liver_au=u(0.38, 0.44),
        liver_av=u(0.70, 0.78),
        liver_aw=u(0.18, 0.22),
        heart_u=u(0.06, 0.14),
        spine_v=u(0.58, 0.64),
        n_vertebrae=u(13.0, 16.0),
        vertebra_phase=u(0, 1),
        hu_fat=u(-115, -85),
        hu_soft=u(38, 52),
        hu_lung=u(-870, -830),
        hu_liver=u(55, 66),
        hu_bone=u(700, 900),
        hu_marrow=u(180, 260),
    )


def _texture(shape: tuple[int, int, int], rng: np.random.Generator, cell: int = 8) -> NDArray[np.float32]:
    """Smooth unit-variance-ish random field: coarse normal noise, linearly interpolated."""
    coarse = [max(2, n // cell + 2) for n in shape]
    field = rng.standard_normal(coarse).astype(np.float32)
    for axis, (n, m) in enumerate(zip(shape, coarse, strict=True)):
        pos = np.linspace(0, m - 1, n)
        lo = np.minimum(np.floor(pos).astype(int), m - 2)
        frac = (pos - lo).astype(np.float32)
        shape_b = [1, 1, 1]
        shape_b[axis] = n
        f = frac.reshape(shape_b)
        field = np.take(field, lo, axis=axis) * (1 - f) + np.take(field, lo + 1, axis=axis) * f
    return field / 0.6


def render_anatomy(
    grid: Grid, anat: Anatomy, rng: np.random.Generator
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Noise-free HU (float32) and labels (uint8), both ``(z, y, x)``."""
    uu, vv, ww = grid.axes()
    shape = grid.shape
    a, b = anat.body_a, anat.body_b
    hu = np.full(shape, -1000.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    tex = _texture(shape, rng)

    def ellipse2d(cu: float, cv: float, au: float, av: float) -> NDArray[np.bool_]:
        return ((uu[None, :] - cu) / au) ** 2 + ((vv[:, None] - cv) / av) ** 2 <= 1.0

    def ellipsoid(
        cu: float, cv: float, cw: float, au: float, av: float, aw: float, w_min: float = -np.inf
    ) -> NDArray[np.bool_]:
        """Full-grid mask, computed only inside the ellipsoid's bounding box (and above ``w_min``)."""
        mask = np.zeros(shape, bool)
        ks = np.flatnonzero((np.abs(ww - cw) <= aw) & (ww >= w_min))
        js = np.flatnonzero(np.abs(vv - cv) <= av)
        is_ = np.flatnonzero(np.abs(uu - cu) <= au)
        if ks.size and js.size and is_.size:
            box = (slice(ks[0], ks[-1] + 1), slice(js[0], js[-1] + 1), slice(is_[0], is_[-1] + 1))
            du = ((uu[box[2]] - cu) / au)[None, None, :] ** 2
            dv = ((vv[box[1]] - cv) / av)[None, :, None] ** 2
            mask[box] = du + dv + ((ww[box[0]] - cw) / aw)[:, None, None] ** 2 <= 1.0
        return mask

    def paint(
        slices: NDArray[np.bool_],
        mask2d: NDArray[np.bool_],
        value: float,
        label: int | None = None,
        texture: float = 0.0,
    ) -> None:
        """Set a prism (a 2-D mask on the selected slices): only its voxels are touched."""
        rows, cols = np.nonzero(mask2d)
        index = (np.flatnonzero(slices)[:, None], rows[None, :], cols[None, :])
        hu[index] = value + texture * tex[index] if texture else value
        if label is not None:
            labels[index] = label

    every = np.ones(shape[0], bool)
    body = ellipse2d(0, 0, a, b)
    inner = ellipse2d(0, 0, 0.90 * a, 0.90 * b)
    paint(every, body, anat.hu_fat, 1, texture=8.0)
    paint(every, inner, anat.hu_soft, texture=8.0)

    # Kidneys, the left upper-abdominal dome (spleen/stomach), heart and aorta: soft tissue, label body.
    for side in (-1, 1):
        hu[ellipsoid(side * 0.30, 0.50 * b, anat.w_base - 0.30, 0.11, 0.16, 0.10) & inner] = 32.0
    left_dome = ellipsoid(0.32 * a, 0.0, anat.w_base - 0.06, 0.36 * a, 0.62 * b, 0.16) & inner
    heart = ellipsoid(anat.heart_u, -0.30 * b, anat.w_base + 0.12, 0.24, 0.30 * b, 0.14) & inner
    hu[left_dome] = 35.0
    hu[heart] = 42.0
    spine_body = ellipse2d(0, anat.spine_v * b, 0.11, 0.11)
    aorta2d = ellipse2d(0.10, anat.spine_v * b - 0.17, 0.05, 0.05)
    paint(ww <= anat.w_apex - 0.08, aorta2d, 45.0)

    lu, lv, lw = anat.liver_centre()
    liver = ellipsoid(lu, lv, lw, anat.liver_au * a, anat.liver_av * b, anat.liver_aw)
    liver &= (inner & ~spine_body & ~aorta2d)[None]
    hu[liver] = anat.hu_liver + 5.0 * tex[liver]
    labels[liver] = 3

    lungs = np.zeros(shape, bool)
    for side in (-1, 1):
        cu, cv = anat.lung_centre(side)
        aw = anat.w_apex - anat.w_base
        lungs |= ellipsoid(cu, cv, anat.w_base, anat.lung_au * a, anat.lung_av * b, aw, w_min=anat.w_base)
    paraspinal = ellipse2d(0, anat.spine_v * b, 0.17, 0.17)
    lungs &= (ellipse2d(0, 0, 0.80 * a, 0.80 * b) & ~paraspinal & ~aorta2d)[None]
    lungs &= ~(liver | heart | left_dome)
    hu[lungs] = anat.hu_lung + 25.0 * tex[lungs]
    labels[lungs] = 2
    paint(ww >= anat.w_base + 0.25, ellipse2d(0.0, -0.12 * b, 0.04, 0.04), -990.0)  # trachea

    # Spine: vertebral bodies (cortical shell, cancellous core) separated by discs, spinous processes; ribs.
    disc = (ww * anat.n_vertebrae + anat.vertebra_phase) % 1.0 < 0.18
    paint(~disc, spine_body, anat.hu_bone, 4)
    paint(~disc, ellipse2d(0, anat.spine_v * b, 0.085, 0.085), anat.hu_marrow, texture=30.0)
    paint(disc, spine_body, 90.0)
    paint(~disc, ellipse2d(0, anat.spine_v * b + 0.17, 0.03, 0.07) & inner, 0.8 * anat.hu_bone, 4)
    rib_band = ellipse2d(0, 0, 0.875 * a, 0.875 * b) & ~ellipse2d(0, 0, 0.825 * a, 0.825 * b)
    rib_band &= (vv > -0.35 * b)[:, None]
    rib_slices = (ww >= anat.w_base - 0.10) & (ww <= anat.w_apex - 0.02) & ((ww * 11.0) % 1.0 < 0.32)
    paint(rib_slices, rib_band, 0.85 * anat.hu_bone, 4)
    return hu, labels


def noise_gain(sigma_px: float) -> float:
    """Standard deviation of unit white noise after the in-plane Gaussian filter of ``sigma_px``."""
    delta = np.zeros((1, 31, 31), np.float64)
    delta[0, 15, 15] = 1.0
    kernel = gaussian_filter(delta, sigma=(0, sigma_px, sigma_px), mode="constant")
    return float(np.sqrt((kernel**2).sum()))


def add_scanner_noise(
    hu: NDArray[np.float32], sigma_hu: float, offset_hu: float, rng: np.random.Generator, sigma_px: float = 0.8
) -> NDArray[np.int16]:
    """Correlated (in-plane blurred) Gaussian noise of std ``sigma_hu``, a calibration offset, int16 HU."""
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise = gaussian_filter(noise, sigma=(0, sigma_px, sigma_px), mode="nearest")
    noise *= np.float32(sigma_hu / noise_gain(sigma_px))
    out = hu + noise
    out += np.float32(offset_hu)
    np.rint(out, out=out)
    np.clip(out, HU_MIN, HU_MAX, out=out)
    return out.astype(np.int16)


__all__ = [
    "HU_MAX",
    "HU_MIN",
    "LABEL_CODES",
    "LABEL_MAP",
    "Anatomy",
    "Grid",
    "add_scanner_noise",
    "make_grid",
    "noise_gain",
    "render_anatomy",
    "sample_anatomy",
]
