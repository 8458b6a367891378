"""Findings from a segmentation: one connected component per lesion, measured in world millimetres.

Each component of each predicted label becomes one finding (003 §5.1): its label code and name,
volume (mm³), longest diameter (mm), centroid in LPS mm, a location phrase, the mean predicted
probability inside it as ``confidence`` and a ``grade`` — ``high`` above the high threshold (0.9),
``medium`` from the review threshold (0.7) up to it, ``review`` (recommend manual review) below.

The longest diameter is the largest extent of the component's voxel boxes: the farthest pair of
voxel centres (on the convex hull) plus one voxel's extent along that direction, so a single voxel
measures its own size and a sphere of radius r measures close to 2r.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> from aimd.models.specs import OutputSpec
>>> arr = np.zeros((8, 16, 16), np.uint8); arr[2:6, 4:8, 4:8] = 1
>>> probs = (arr[:, None] * 0.95).astype(np.float32)
>>> spec = OutputSpec(task="segmentation", labels={1: "lesion"}, activation="sigmoid")
>>> f = extract_findings(Volume(arr, spacing=(1.0, 1.0, 2.0)), probs, spec)[0]
>>> f.volume_mm3, f.grade
(128.0, 'high')
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from aimd.imaging.volume import Volume
from aimd.models.specs import OutputSpec

Grade = Literal["high", "medium", "review"]


class GradeThresholds(BaseModel):
    """Confidence grades of 003 §5.1: high > ``high``; medium ``review``..``high``; review below."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    high: float = Field(0.9, gt=0, lt=1)
    review: float = Field(0.7, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> GradeThresholds:
        if self.review >= self.high:
            raise ValueError(f"review threshold {self.review} must be below the high threshold {self.high}")
        return self

    def grade(self, confidence: float) -> Grade:
        """The grade of one confidence value.

        Example
        -------
        >>> [GradeThresholds().grade(c) for c in (0.95, 0.9, 0.7, 0.69)]
        ['high', 'medium', 'medium', 'review']
        """
        if confidence > self.high:
            return "high"
        if confidence >= self.review:
            return "medium"
        return "review"


class Location(BaseModel):
    """Where a finding lies: organ (from the label name, when it names one), side and level."""

    model_config = ConfigDict(frozen=True)

    organ: str | None = None
    side: Literal["left", "right", "midline"]
    level: Literal["upper", "middle", "lower"]
    en: str
    zh: str


class InferenceFinding(BaseModel):
    """One finding of a model on one image (003 §5.1)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: int
    label_name: str
    voxels: int
    volume_mm3: float
    longest_diameter_mm: float
    centroid_lps_mm: tuple[float, float, float]
    location: Location | None = None
    confidence: float
    grade: Grade
    review_recommended: bool
    mean_hu: float | None = None
    box_px: tuple[float, float, float, float] | None = None
    explanation: dict[str, Any] = Field(default_factory=dict)


def longest_diameter_mm(points_ijk: NDArray[Any], spacing: tuple[float, float, float]) -> float:
    """Largest extent of a set of voxels ``(n, 3)`` in (i, j, k) order with ``spacing`` (x, y, z).

    Example
    -------
    >>> longest_diameter_mm(np.array([[0, 0, 0]]), (0.5, 0.5, 2.0))
    2.0
    >>> longest_diameter_mm(np.array([[0, 0, 0], [3, 0, 0]]), (1.0, 1.0, 1.0))
    4.0
    """
    sp = np.asarray(spacing, dtype=np.float64)
    mm = np.asarray(points_ijk, dtype=np.float64) * sp
    if len(mm) == 1:
        return float(sp.max())
    cand = mm
    if len(mm) > 4:
        try:
            cand = mm[ConvexHull(mm).vertices]
        except QhullError:  # flat or collinear: every point is a candidate (components are small then)
            cand = mm if len(mm) <= 4000 else mm[np.unique(np.r_[mm.argmin(0), mm.argmax(0)])]
    diff = cand[:, None, :] - cand[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    a, b = np.unravel_index(int(dist.argmax()), dist.shape)
    length = float(dist[a, b])
    if length == 0:
        return float(sp.max())
    unit = np.abs(diff[a, b]) / length
    return length + float((unit * sp).sum())


_ORGANS = {"lung": ("lung", "肺"), "liver": ("liver", "肝"), "kidney": ("kidney", "肾"), "brain": ("brain", "脑")}
_SIDE_ZH = {"left": "左", "right": "右", "midline": "中线"}
_LEVEL_ZH = {"upper": "上", "middle": "中", "lower": "下"}


def locate(centroid_ijk: NDArray[Any], volume: Volume, label_name: str) -> Location:
    """Side (patient left/right of the image centre), level (thirds of the z extent) and organ.

    The organ comes from the label name when it names one (``lung_nodule`` → lung); otherwise the
    phrase names the image region only.

    Example
    -------
    >>> vol = Volume(np.zeros((30, 10, 10)))
    >>> locate(np.array([8.0, 5.0, 25.0]), vol, "lung_nodule").zh
    '左肺上野'
    """
    world = volume.index_to_world(centroid_ijk)
    centre = volume.index_to_world((np.asarray(volume.size_xyz, dtype=np.float64) - 1) / 2)
    dx = float(world[0] - centre[0])
    half_width = volume.size_xyz[0] * volume.spacing[0] / 2
    side: Literal["left", "right", "midline"] = (
        "midline" if abs(dx) < 0.05 * half_width else ("left" if dx > 0 else "right")
    )  # LPS: +x = patient left
    span = world_z_span(volume)
    frac = 0.5 if span[1] == span[0] else (float(world[2]) - span[0]) / (span[1] - span[0])  # 1 = head end
    level: Literal["upper", "middle", "lower"] = "upper" if frac > 2 / 3 else ("lower" if frac < 1 / 3 else "middle")
    organ = next((key for key in _ORGANS if key in label_name.lower()), None)
    if organ == "lung":
        en = f"{side} lung, {level} zone" if side != "midline" else f"{level} mediastinum"
        zh = f"{_SIDE_ZH[side]}肺{_LEVEL_ZH[level]}野" if side != "midline" else f"纵隔{_LEVEL_ZH[level]}部"
    elif organ is not None:
        name_en, name_zh = _ORGANS[organ]
        part = {"left": "左", "right": "右", "midline": ""}[side]
        en = f"{name_en}, {side} part" if side != "midline" else name_en
        zh = f"{name_zh}{part}叶" if part else name_zh
    else:
        en = f"{side} {level} region of the image" if side != "midline" else f"{level} midline of the image"
        zh = f"{_SIDE_ZH[side]}侧{_LEVEL_ZH[level]}部" if side != "midline" else f"中线{_LEVEL_ZH[level]}部"
    return Location(organ=organ, side=side, level=level, en=en, zh=zh)


def world_z_span(volume: Volume) -> tuple[float, float]:
    """Lowest and highest world z (superior is +z in LPS) of the volume's voxel centres."""
    corners = np.array([[0, 0, 0], [0, 0, volume.shape[0] - 1]], dtype=np.float64)
    zs = [float(volume.index_to_world(c)[2]) for c in corners]
    return min(zs), max(zs)


def _class_channels(spec: OutputSpec) -> list[tuple[int, int]]:
    """(label value, probability channel) pairs of the foreground classes."""
    if spec.activation == "sigmoid":
        return [(1, 0)]
    return [(label, label) for label in sorted(spec.labels) if label != 0]


def components(
    labels: Volume, spec: OutputSpec, *, min_voxels: int = 1
) -> list[tuple[int, int, tuple[slice, ...], NDArray[np.bool_]]]:
    """``(label, channel, bounding slices, local mask)`` of every finding, in finding order."""
    arr = np.asarray(labels.array)
    structure = np.ones((3, 3, 3), bool)
    out = []
    for label, channel in _class_channels(spec):
        comp, count = ndimage.label(arr == label, structure=structure)
        if count == 0:
            continue
        for index, zyx in enumerate(ndimage.find_objects(comp), start=1):
            if zyx is None:
                continue
            local = comp[zyx] == index
            if int(local.sum()) >= min_voxels:
                out.append((label, channel, zyx, local))
    return out


def region_mask(labels: Volume, spec: OutputSpec, index: int, *, min_voxels: int = 1) -> NDArray[np.bool_]:
    """Full-size boolean mask of finding number ``index`` (0-based, finding order)."""
    _, _, zyx, local = components(labels, spec, min_voxels=min_voxels)[index]
    full = np.zeros(labels.shape, bool)
    full[zyx] = local
    return full


def extract_findings(
    labels: Volume,
    probabilities: NDArray[np.float32],
    spec: OutputSpec,
    *,
    image: Volume | None = None,
    thresholds: GradeThresholds | None = None,
    min_voxels: int = 1,
) -> list[InferenceFinding]:
    """Connected components (26-connected) of each foreground label, measured and graded.

    Parameters
    ----------
    labels:
        Predicted label volume ``(z, y, x)`` with its geometry.
    probabilities:
        ``(z, channels, y, x)`` probabilities the labels were derived from.
    spec:
        The model's output spec (label names, activation).
    image:
        The input image on the same grid; CT gives each finding its mean HU.
    thresholds:
        Confidence grade thresholds.
    min_voxels:
        Smaller components are dropped.
    """
    th = thresholds or GradeThresholds()
    voxel_mm3 = float(np.prod(labels.spacing))
    hu = np.asarray(image.array) if image is not None and (image.modality or "").upper() == "CT" else None
    out: list[InferenceFinding] = []
    for label, channel, zyx, local in components(labels, spec, min_voxels=min_voxels):
        voxels = int(local.sum())
        kk, jj, ii = np.nonzero(local)
        offset = np.array([zyx[2].start, zyx[1].start, zyx[0].start])
        ijk = np.stack([ii, jj, kk], axis=1) + offset
        centroid_ijk = ijk.mean(axis=0)
        confidence = float(probabilities[:, channel][zyx][local].mean())
        name = spec.labels.get(label, str(label))
        out.append(
            InferenceFinding(
                id=f"F{len(out) + 1}",
                label=label,
                label_name=name,
                voxels=voxels,
                volume_mm3=round(voxels * voxel_mm3, 3),
                longest_diameter_mm=round(longest_diameter_mm(ijk, labels.spacing), 2),
                centroid_lps_mm=tuple(round(float(v), 3) for v in labels.index_to_world(centroid_ijk)),
                location=locate(centroid_ijk, labels, name),
                confidence=round(confidence, 4),
                grade=th.grade(confidence),
                review_recommended=th.grade(confidence) == "review",
                mean_hu=round(float(hu[zyx][local].mean()), 1) if hu is not None else None,
            )
        )
    return out


def classification_findings(
    scores: NDArray[np.float32], spec: OutputSpec, *, thresholds: GradeThresholds | None = None
) -> list[InferenceFinding]:
    """One finding per image whose positive-class probability reaches 0.5 (classification models).

    The confidence is that probability; an image below 0.5 has no finding.
    """
    th = thresholds or GradeThresholds()
    name = spec.labels.get(spec.positive_class, "positive")
    out: list[InferenceFinding] = []
    for k, score in enumerate(np.asarray(scores, dtype=np.float64)):
        if score < 0.5:
            continue
        out.append(
            InferenceFinding(
                id=f"F{len(out) + 1}",
                label=spec.positive_class,
                label_name=name,
                voxels=0,
                volume_mm3=0.0,
                longest_diameter_mm=0.0,
                centroid_lps_mm=(0.0, 0.0, 0.0),
                confidence=round(float(score), 4),
                grade=th.grade(float(score)),
                review_recommended=th.grade(float(score)) == "review",
                explanation={"image_index": k},
            )
        )
    return out


def detection_findings(
    detections: list[list[dict[str, Any]]],
    spec: OutputSpec,
    image: Volume,
    *,
    thresholds: GradeThresholds | None = None,
) -> list[InferenceFinding]:
    """One finding per detected box at or above the model's operating point (detection models).

    ``detections[k]`` lists the boxes of image ``k`` (``box`` ``[x0, y0, x1, y1]`` in pixel-edge
    coordinates, ``score``, ``centre_px``, ``radius_px``). The diameter is the box width in mm, the
    centroid the box centre in LPS mm, the confidence the box score; ``volume_mm3`` is 0 (a
    radiograph has no depth).

    Example
    -------
    >>> spec = OutputSpec(task="segmentation", labels={1: "nodule_centre"}, activation="sigmoid")
    >>> img = Volume(np.zeros((1, 64, 64)), spacing=(0.5, 0.5, 1.0), modality="DX")
    >>> box = {"box": [10.0, 20.0, 18.0, 28.0], "score": 0.93, "centre_px": [14.0, 24.0], "radius_px": 4.0}
    >>> f = detection_findings([[box, {**box, "score": 0.2}]], spec, img)
    >>> len(f), f[0].longest_diameter_mm, f[0].grade, f[0].centroid_lps_mm
    (1, 4.0, 'high', (6.75, 11.75, 0.0))
    """
    th = thresholds or GradeThresholds()
    name = spec.labels.get(1, "finding").removesuffix("_centre")
    sx, sy = float(image.spacing[0]), float(image.spacing[1])
    out: list[InferenceFinding] = []
    for k, boxes in enumerate(detections):
        for det in boxes:
            score = float(det["score"])
            if score < spec.threshold:
                continue
            x0, y0, x1, y1 = (float(v) for v in det["box"])
            cx, cy = det["centre_px"]
            centre_ijk = np.array([float(cx) - 0.5, float(cy) - 0.5, float(k)])
            grade = th.grade(score)
            out.append(
                InferenceFinding(
                    id=f"F{len(out) + 1}",
                    label=1,
                    label_name=name,
                    voxels=0,
                    volume_mm3=0.0,
                    longest_diameter_mm=round(max((x1 - x0) * sx, (y1 - y0) * sy), 2),
                    centroid_lps_mm=tuple(round(float(v), 3) for v in image.index_to_world(centre_ijk)),
                    location=locate(centre_ijk, image, name),
                    confidence=round(score, 4),
                    grade=grade,
                    review_recommended=grade == "review",
                    box_px=(x0, y0, x1, y1),
                    explanation={"image_index": k},
                )
            )
    return out


__all__ = [
    "Grade",
    "GradeThresholds",
    "InferenceFinding",
    "Location",
    "classification_findings",
    "components",
    "detection_findings",
    "extract_findings",
    "locate",
    "region_mask",
    "longest_diameter_mm",
    "world_z_span",
]
