"""Lung lobes/segments and Couinaud liver segments of a point in the phantom (001 §8.3 c).

The fissures and segment borders are simple planes in each organ's own normalised frame, so the
lobe and segment of a lesion follow from its centre and are the ground truth the report cites.

Example
-------
>>> from aimd.phantoms.anatomy import Anatomy
>>> anat = Anatomy(0.85, 0.6, 0.44, 0.95, 0.36, 0.3, 0.6, -0.35, 0.41, 0.74, 0.2, 0.1, 0.6, 14, 0.5,
...                -100, 45, -850, 60, 800, 220)
>>> place = lung_place(anat, -0.3, -0.05, 0.93)
>>> place.lobe, place.segment, place.lobe_zh
('RUL', 'S1', '右肺上叶')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from aimd.phantoms.anatomy import Anatomy

LUNG_LOBES: dict[str, tuple[str, str]] = {
    "RUL": ("right upper lobe", "右肺上叶"),
    "RML": ("right middle lobe", "右肺中叶"),
    "RLL": ("right lower lobe", "右肺下叶"),
    "LUL": ("left upper lobe", "左肺上叶"),
    "LLL": ("left lower lobe", "左肺下叶"),
}
LUNG_SEGMENTS: dict[str, tuple[str, str]] = {
    "S1": ("apical segment", "尖段"),
    "S2": ("posterior segment", "后段"),
    "S3": ("anterior segment", "前段"),
    "S1+2": ("apicoposterior segment", "尖后段"),
    "S4": ("lateral segment", "外侧段"),
    "S5": ("medial segment", "内侧段"),
    "S6": ("superior segment", "背段"),
    "S7": ("medial basal segment", "内基底段"),
    "S7+8": ("anteromedial basal segment", "前内基底段"),
    "S8": ("anterior basal segment", "前基底段"),
    "S9": ("lateral basal segment", "外基底段"),
    "S10": ("posterior basal segment", "后基底段"),
}
_LINGULA = {"S4": ("superior lingular segment", "上舌段"), "S5": ("inferior lingular segment", "下舌段")}
LIVER_LOBES: dict[str, tuple[str, str]] = {
    "LIVER_RIGHT": ("right hepatic lobe", "肝右叶"),
    "LIVER_LEFT": ("left hepatic lobe", "肝左叶"),
    "LIVER_CAUDATE": ("caudate lobe", "肝尾状叶"),
}


@dataclass(frozen=True)
class Place:
    """Lobe and segment of a point, with English and Chinese names."""

    lobe: str
    lobe_en: str
    lobe_zh: str
    segment: str
    segment_en: str
    segment_zh: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def lung_place(anat: Anatomy, u: float, v: float, w: float) -> Place:
    """Lobe/segment of normalised point ``(u, v, w)`` in the lung on its side (u < 0: right)."""
    side = -1 if u < 0 else 1
    cu, cv = anat.lung_centre(side)
    lu = side * (u - cu) / (anat.lung_au * anat.body_a)
    lv = (v - cv) / (anat.lung_av * anat.body_b)
    lw = (w - anat.w_base) / (anat.w_apex - anat.w_base)
    lower = lw < 0.35 + 0.35 * lv  # oblique fissure: posterior-superior to anterior-inferior
    if lower:
        lobe = "RLL" if side < 0 else "LLL"
        if lw > 0.40:
            seg = "S6"
        elif lv < 0.25 and lu < -0.35 and side < 0:
            seg = "S7"
        elif lv < 0.25:
            seg = "S8" if side < 0 else "S7+8"
        else:
            seg = "S9" if lu > 0.35 else "S10"
    elif side < 0 and lw < 0.45:  # horizontal fissure
        lobe, seg = "RML", ("S4" if lu > 0 else "S5")
    elif side < 0:
        lobe, seg = "RUL", ("S1" if lw > 0.78 else "S2" if lv > 0 else "S3")
    elif lw < 0.45:  # lingula
        lobe, seg = "LUL", ("S4" if lw >= 0.25 else "S5")
    else:
        lobe, seg = "LUL", ("S1+2" if lw > 0.78 or lv > 0.1 else "S3")
    names = _LINGULA if lobe == "LUL" and seg in _LINGULA else LUNG_SEGMENTS
    return Place(lobe, *LUNG_LOBES[lobe], seg, *names[seg])


def liver_place(anat: Anatomy, u: float, v: float, w: float) -> Place:
    """Couinaud segment (S1–S8) of normalised point ``(u, v, w)`` in the liver."""
    cu, cv, cw = anat.liver_centre()
    lu = (u - cu) / (anat.liver_au * anat.body_a)  # > 0 towards the patient's left
    lv = (v - cv) / (anat.liver_av * anat.body_b)
    lw = (w - cw) / anat.liver_aw
    if lv > 0.35 and 0.15 < lu < 0.55:
        lobe, seg = "LIVER_CAUDATE", "S1"
    elif lu > 0.55:
        lobe, seg = "LIVER_LEFT", ("S2" if lw > 0 else "S3")
    elif lu > 0.25:
        lobe, seg = "LIVER_LEFT", "S4"
    elif lv < 0:
        lobe, seg = "LIVER_RIGHT", ("S8" if lw > 0 else "S5")
    else:
        lobe, seg = "LIVER_RIGHT", ("S7" if lw > 0 else "S6")
    return Place(lobe, *LIVER_LOBES[lobe], seg, f"segment {seg}", f"{seg}段")


__all__ = ["LIVER_LOBES", "LUNG_LOBES", "LUNG_SEGMENTS", "Place", "liver_place", "lung_place"]
