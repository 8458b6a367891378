"""Object detection and localisation: box IoU, object matching, precision/recall, FPs per image, FROC.

Objects are axis-aligned boxes in 2-D or 3-D, stored as corners ``(x1, y1[, z1], x2, y2[, z2])``,
or points ``(x, y[, z])``. One matching rule is used throughout (the COCO rule):

* detections of an image are visited in descending score order (stable for ties);
* each takes the still-unmatched reference object of the **same class** with the highest
  similarity that passes the criterion — IoU ≥ threshold, or centre distance ≤ ``max_distance``
  (same units as the coordinates); ties go to the later reference object, as in pycocotools;
* an unmatched detection is a false positive (a second hit on a found object included), an
  unmatched reference object a false negative.

Object-level rates over images (001 D.2–D.3, FPs per image, FROC) are in
:mod:`aimd.metrics.detection_rates`.

Example
-------
>>> gt = ImageObjects.boxes_from_corners("img1", [[0, 0, 10, 10]], labels=[1])
>>> det = ImageObjects.boxes_from_corners("img1", [[1, 1, 10, 10], [50, 50, 60, 60]], labels=[1, 1],
...                                       scores=[0.9, 0.8])
>>> match_image(gt, det)[1].det_to_ref.tolist()
[0, -1]
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aimd.core.errors import InvalidInputError

__all__ = [
    "MATCHING_RULE",
    "ImageObjects",
    "Matching",
    "box_iou",
    "centre_distance",
    "greedy_match",
    "match_image",
    "score_order",
]

Criterion = Literal["iou", "center"]

MATCHING_RULE = (
    "greedy by descending score within each image and class; a detection takes the unmatched reference "
    "object with the highest IoU >= threshold (or the nearest centre within max_distance), ties to the later "
    "object (pycocotools rule); unmatched detections are false positives, unmatched references "
    "false negatives"
)


@dataclass(frozen=True)
class ImageObjects:
    """Objects of one image: boxes ``(n, 2·ndim)`` as corners, or points ``(n, ndim)``.

    ``scores`` is ``None`` for reference objects; ``crowd`` marks reference regions that are
    ignored (COCO ``iscrowd``).
    """

    image_id: Hashable
    coords: NDArray[np.float64]
    labels: NDArray[np.int64]
    kind: Literal["box", "point"] = "box"
    scores: NDArray[np.float64] | None = None
    crowd: NDArray[np.bool_] | None = None
    ids: tuple[Hashable, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        coords = np.asarray(self.coords, dtype=np.float64)
        if coords.size == 0:
            coords = coords.reshape(0, coords.shape[1] if coords.ndim == 2 else (4 if self.kind == "box" else 2))
        if coords.ndim != 2:
            raise InvalidInputError(f"image {self.image_id}: coordinates must be a table (n, k), got {coords.shape}")
        width = coords.shape[1]
        valid = (4, 6) if self.kind == "box" else (2, 3)
        if width not in valid:
            raise InvalidInputError(f"image {self.image_id}: {self.kind}es need {valid} numbers each, got {width}")
        if not np.all(np.isfinite(coords)):
            raise InvalidInputError(f"image {self.image_id}: coordinates hold NaN or infinity")
        if self.kind == "box":
            half = width // 2
            if np.any(coords[:, half:] < coords[:, :half]):
                raise InvalidInputError(f"image {self.image_id}: a box has its max corner below its min corner")
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if labels.size != len(coords):
            raise InvalidInputError(f"image {self.image_id}: {len(coords)} objects but {labels.size} labels")
        object.__setattr__(self, "coords", coords)
        object.__setattr__(self, "labels", labels)
        if self.scores is not None:
            scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
            if scores.size != len(coords) or not np.all(np.isfinite(scores)):
                raise InvalidInputError(f"image {self.image_id}: need one finite score per detection")
            object.__setattr__(self, "scores", scores)
        crowd = np.zeros(len(coords), bool) if self.crowd is None else np.asarray(self.crowd, bool).reshape(-1)
        object.__setattr__(self, "crowd", crowd)

    @classmethod
    def boxes_from_corners(
        cls,
        image_id: Hashable,
        corners: ArrayLike,
        labels: ArrayLike | None = None,
        scores: ArrayLike | None = None,
    ) -> ImageObjects:
        """Boxes given as ``(x1, y1[, z1], x2, y2[, z2])``; labels default to class 1.

        Examples
        --------
        >>> ImageObjects.boxes_from_corners("a", [[0, 0, 2, 2]]).coords.tolist()
        [[0.0, 0.0, 2.0, 2.0]]
        """
        arr = np.asarray(corners, dtype=np.float64).reshape(-1, np.shape(corners)[-1] if np.size(corners) else 4)
        lab = np.ones(len(arr), np.int64) if labels is None else labels
        return cls(image_id, arr, np.asarray(lab), "box", None if scores is None else np.asarray(scores))

    @classmethod
    def boxes_from_xywh(
        cls,
        image_id: Hashable,
        boxes: ArrayLike,
        labels: ArrayLike | None = None,
        scores: ArrayLike | None = None,
    ) -> ImageObjects:
        """Boxes given COCO-style as ``(x, y[, z], w, h[, d])``.

        Examples
        --------
        >>> ImageObjects.boxes_from_xywh("a", [[1, 1, 2, 3]]).coords.tolist()
        [[1.0, 1.0, 3.0, 4.0]]
        """
        arr = np.asarray(boxes, dtype=np.float64).reshape(-1, np.shape(boxes)[-1] if np.size(boxes) else 4)
        half = arr.shape[1] // 2
        corners = np.concatenate([arr[:, :half], arr[:, :half] + arr[:, half:]], axis=1)
        return cls.boxes_from_corners(image_id, corners, labels, scores)

    @classmethod
    def points(
        cls,
        image_id: Hashable,
        points: ArrayLike,
        labels: ArrayLike | None = None,
        scores: ArrayLike | None = None,
    ) -> ImageObjects:
        """Points ``(x, y[, z])``; matched by centre distance only.

        Examples
        --------
        >>> ImageObjects.points("a", [[1, 2]]).kind
        'point'
        """
        arr = np.asarray(points, dtype=np.float64).reshape(-1, np.shape(points)[-1] if np.size(points) else 2)
        lab = np.ones(len(arr), np.int64) if labels is None else labels
        return cls(image_id, arr, np.asarray(lab), "point", None if scores is None else np.asarray(scores))

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def centres(self) -> NDArray[np.float64]:
        """Box centres, or the points themselves."""
        if self.kind == "point":
            return self.coords
        half = self.coords.shape[1] // 2
        return (self.coords[:, :half] + self.coords[:, half:]) / 2.0

    def subset(self, keep: NDArray[np.bool_]) -> ImageObjects:
        """The objects selected by a boolean mask."""
        ids = tuple(i for i, k in zip(self.ids, keep, strict=True) if k) if self.ids else ()
        assert self.crowd is not None
        return ImageObjects(
            self.image_id,
            self.coords[keep],
            self.labels[keep],
            self.kind,
            None if self.scores is None else self.scores[keep],
            self.crowd[keep],
            ids,
        )


def box_iou(a: ArrayLike, b: ArrayLike, crowd: ArrayLike | None = None) -> NDArray[np.float64]:
    """Pairwise IoU of corner boxes ``a (n, 2k)`` and ``b (m, 2k)`` → ``(n, m)``.

    For a ``crowd`` box in ``b`` the denominator is the area of the ``a`` box (COCO rule).

    Examples
    --------
    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]]).round(4).tolist()
    [[0.3333, 0.0]]
    """
    aa = np.asarray(a, dtype=np.float64).reshape(-1, np.shape(a)[-1] if np.size(a) else 4)
    bb = np.asarray(b, dtype=np.float64).reshape(-1, np.shape(b)[-1] if np.size(b) else aa.shape[1])
    if aa.shape[1] != bb.shape[1]:
        raise InvalidInputError(f"boxes differ in dimension: {aa.shape[1] // 2}-D vs {bb.shape[1] // 2}-D")
    half = aa.shape[1] // 2
    lo = np.maximum(aa[:, None, :half], bb[None, :, :half])
    hi = np.minimum(aa[:, None, half:], bb[None, :, half:])
    inter = np.prod(np.clip(hi - lo, 0.0, None), axis=-1)
    vol_a = np.prod(aa[:, half:] - aa[:, :half], axis=1)
    vol_b = np.prod(bb[:, half:] - bb[:, :half], axis=1)
    union = vol_a[:, None] + vol_b[None, :] - inter
    if crowd is not None:
        cr = np.asarray(crowd, bool).reshape(-1)
        union = np.where(cr[None, :], vol_a[:, None], union)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def centre_distance(a: ImageObjects, b: ImageObjects) -> NDArray[np.float64]:
    """Pairwise Euclidean distance between object centres → ``(len(a), len(b))``.

    Examples
    --------
    >>> p = ImageObjects.points("i", [[0, 0]]); q = ImageObjects.points("i", [[3, 4]])
    >>> centre_distance(p, q).tolist()
    [[5.0]]
    """
    ca, cb = a.centres, b.centres
    if ca.shape[1] != cb.shape[1]:
        raise InvalidInputError(f"image {a.image_id}: objects differ in dimension ({ca.shape[1]} vs {cb.shape[1]})")
    return np.sqrt(((ca[:, None, :] - cb[None, :, :]) ** 2).sum(axis=-1))


def score_order(scores: NDArray[np.float64]) -> NDArray[np.intp]:
    """Indices by descending score, stable for ties (COCO uses a merge sort)."""
    return np.argsort(-scores, kind="mergesort")


def greedy_match(
    similarity: NDArray[np.float64],
    threshold: float,
    order: NDArray[np.intp],
    ignore: NDArray[np.bool_] | None = None,
    reusable: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """COCO's greedy matching on a ``(n_det, n_ref)`` similarity matrix.

    Returns, per detection (original order), the matched reference index (−1 if none) and
    whether the match is to an ignored reference. References are expected ignored-last.
    """
    n_det, n_ref = similarity.shape
    match = np.full(n_det, -1, dtype=np.intp)
    ignored = np.zeros(n_det, bool)
    taken = np.zeros(n_ref, bool)
    ign = np.zeros(n_ref, bool) if ignore is None else ignore
    reuse = np.zeros(n_ref, bool) if reusable is None else reusable
    for d in order:
        best = min(threshold, 1 - 1e-10)
        m = -1
        row = similarity[d]
        for g in range(n_ref):
            if taken[g] and not reuse[g]:
                continue
            if m > -1 and not ign[m] and ign[g]:
                break
            if row[g] < best:
                continue
            best = row[g]
            m = g
        if m >= 0:
            match[d] = m
            ignored[d] = ign[m]
            taken[m] = True
    return match, ignored


@dataclass(frozen=True)
class Matching:
    """Result of matching one image's detections to its reference objects (one class)."""

    det_to_ref: NDArray[np.intp]
    scores: NDArray[np.float64]
    n_ref: int

    @property
    def det_is_tp(self) -> NDArray[np.bool_]:
        """Per detection: matched to a reference object."""
        return self.det_to_ref >= 0


def _similarity(
    ref: ImageObjects, det: ImageObjects, criterion: Criterion, threshold: float, max_distance: float | None
) -> tuple[NDArray[np.float64], float]:
    if criterion == "iou":
        if ref.kind != "box" or det.kind != "box":
            raise InvalidInputError("IoU matching needs boxes; match points with criterion='center'")
        return box_iou(det.coords, ref.coords), threshold
    if criterion == "center":
        if max_distance is None or max_distance < 0:
            raise InvalidInputError(f"centre matching needs max_distance >= 0, got {max_distance}")
        return -centre_distance(det, ref), -float(max_distance) - 1e-12
    raise InvalidInputError(f"criterion must be 'iou' or 'center', got {criterion!r}")


def match_image(
    ref: ImageObjects,
    det: ImageObjects,
    *,
    criterion: Criterion = "iou",
    threshold: float = 0.5,
    max_distance: float | None = None,
) -> dict[int, Matching]:
    """Match one image's detections to its reference objects, class by class.

    Examples
    --------
    >>> gt = ImageObjects.points("i", [[0, 0], [10, 10]])
    >>> det = ImageObjects.points("i", [[1, 0], [30, 30]], scores=[0.5, 0.9])
    >>> match_image(gt, det, criterion="center", max_distance=2.0)[1].det_to_ref.tolist()
    [0, -1]
    """
    if det.scores is None:
        raise InvalidInputError(f"image {det.image_id}: detections need scores")
    out: dict[int, Matching] = {}
    for label in sorted(set(ref.labels.tolist()) | set(det.labels.tolist())):
        r = ref.subset(ref.labels == label)
        d = det.subset(det.labels == label)
        assert d.scores is not None
        if len(r) and len(d):
            sim, thr = _similarity(r, d, criterion, threshold, max_distance)
            match, _ = greedy_match(sim, thr, score_order(d.scores))
        else:
            match = np.full(len(d), -1, dtype=np.intp)
        out[int(label)] = Matching(match, d.scores, len(r))
    return out
