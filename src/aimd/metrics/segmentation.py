"""Segmentation metrics per label, spacing-aware, for 2-D and 3-D binary or multi-label masks.

Overlap metrics follow 000 App. A.10.2 (IoU A.5, Dice A.6, pixel accuracy A.7) and 001 App. D
(Dice D.4, Conformity D.5, IoU D.6, Hausdorff D.7); 001 §9.1.1 b and §9.2 a–c name them as the
segmentation QC and consistency metrics. Surface distances use the definition in
:mod:`aimd.metrics.surface` (pinned to MONAI).

Empty masks follow Metrics Reloaded, never NaN:

* both empty — Dice, IoU, precision, recall and both conformities are 1, distances 0;
* exactly one empty — Dice, IoU, precision and recall are 0, the distances are the stated
  worst case (the image diagonal in mm) and ``distance_worst_case`` is set;
* conformity (D.5 ``1 − FP/TP`` and classic ``1 − (FP+FN)/TP``) is undefined, reported as ``None``,
  whenever TP = 0 and the masks are not both empty.

Example
-------
>>> import numpy as np
>>> ref = np.zeros((1, 8, 8), np.uint8); ref[0, 2:6, 2:6] = 1
>>> pred = np.zeros_like(ref); pred[0, 2:6, 3:7] = 1
>>> m = segmentation_metrics(ref, pred, spacing=(2.0, 0.5, 0.5))[1]
>>> round(m.dice, 3), m.hd, m.volume_ref
(0.75, 0.5, 8.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from aimd.core.errors import GeometryError, InvalidInputError
from aimd.metrics._validation import as_label_array, as_spacing, safe_ratio
from aimd.metrics.surface import SURFACE_DEFINITION, BorderPoints, foreground_boxes, image_diagonal_mm

__all__ = [
    "SEGMENTATION_DEFINITIONS",
    "LabelMetrics",
    "OverlapCounts",
    "conformity",
    "conformity_classic",
    "dice",
    "iou",
    "pixel_accuracy",
    "precision",
    "recall",
    "segmentation_metrics",
    "volume_ml",
]

SEGMENTATION_DEFINITIONS: dict[str, str] = {
    "dice": "2·TP / (2·TP + FP + FN) (000 A.10.2 b, 001 D.4)",
    "iou": "TP / (TP + FP + FN) (000 A.10.2 a, 001 D.6)",
    "pixel_accuracy": "(TP + TN) / N over the whole image, label vs rest (000 A.10.2 c)",
    "precision": "TP / (TP + FP) voxel-wise",
    "recall": "TP / (TP + FN) voxel-wise",
    "conformity": "1 − FP / TP, as written in 001 D.5 (formula D.4); null when TP = 0",
    "conformity_classic": "1 − (FP + FN) / TP (Chang et al. 2009); null when TP = 0",
    "surface": SURFACE_DEFINITION,
    "empty_masks": (
        "both empty: overlap metrics 1, distances 0; exactly one empty: Dice/IoU/precision/recall 0 and "
        "distances = image diagonal in mm (distance_worst_case true) — Metrics Reloaded"
    ),
    "volume": "voxel count × voxel volume, in mL (cm³); volume_diff_ml = pred − ref",
}


@dataclass(frozen=True)
class OverlapCounts:
    """Voxel counts of a binary pair: true/false positives/negatives.

    Examples
    --------
    >>> OverlapCounts(tp=3, fp=1, fn=2, tn=10).dice
    0.6666666666666666
    """

    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_masks(cls, ref: ArrayLike, pred: ArrayLike) -> OverlapCounts:
        """Counts of two masks of one shape (non-zero is foreground)."""
        r = np.asarray(ref) != 0
        p = np.asarray(pred) != 0
        if r.shape != p.shape:
            raise GeometryError(f"reference and prediction differ in shape: {r.shape} vs {p.shape}")
        tp = int(np.count_nonzero(r & p))
        nr, npred = int(np.count_nonzero(r)), int(np.count_nonzero(p))
        return cls(tp, npred - tp, nr - tp, int(r.size) - nr - npred + tp)

    @property
    def both_empty(self) -> bool:
        """True when neither mask has a voxel."""
        return self.tp + self.fp + self.fn == 0

    @property
    def dice(self) -> float:
        """2·TP / (2·TP + FP + FN); 1 when both masks are empty."""
        return safe_ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn, when_zero=1.0)

    @property
    def iou(self) -> float:
        """TP / (TP + FP + FN); 1 when both masks are empty."""
        return safe_ratio(self.tp, self.tp + self.fp + self.fn, when_zero=1.0)

    @property
    def pixel_accuracy(self) -> float:
        """(TP + TN) / N."""
        return safe_ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn, when_zero=1.0)

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1 when both empty, 0 when only the prediction is empty."""
        return safe_ratio(self.tp, self.tp + self.fp, when_zero=1.0 if self.both_empty else 0.0)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1 when both empty, 0 when only the reference is empty."""
        return safe_ratio(self.tp, self.tp + self.fn, when_zero=1.0 if self.both_empty else 0.0)

    @property
    def conformity(self) -> float | None:
        """001 D.5 as written: 1 − FP/TP; ``None`` (undefined) when TP = 0 unless both are empty."""
        if self.both_empty:
            return 1.0
        return None if self.tp == 0 else 1.0 - self.fp / self.tp

    @property
    def conformity_classic(self) -> float | None:
        """Classic conformity 1 − (FP + FN)/TP; ``None`` when TP = 0 unless both are empty."""
        if self.both_empty:
            return 1.0
        return None if self.tp == 0 else 1.0 - (self.fp + self.fn) / self.tp


def dice(ref: ArrayLike, pred: ArrayLike) -> float:
    """Dice coefficient of two binary masks (000 A.10.2 b, 001 D.4).

    Examples
    --------
    >>> dice([[1, 1, 0, 0]], [[0, 1, 1, 0]])
    0.5
    """
    return OverlapCounts.from_masks(ref, pred).dice


def iou(ref: ArrayLike, pred: ArrayLike) -> float:
    """Intersection over union of two binary masks (000 A.10.2 a, 001 D.6).

    Examples
    --------
    >>> round(iou([[1, 1, 0, 0]], [[0, 1, 1, 0]]), 4)
    0.3333
    """
    return OverlapCounts.from_masks(ref, pred).iou


def pixel_accuracy(ref: ArrayLike, pred: ArrayLike) -> float:
    """Fraction of voxels classified alike (000 A.10.2 c).

    Examples
    --------
    >>> pixel_accuracy([[1, 1, 0, 0]], [[0, 1, 1, 0]])
    0.5
    """
    return OverlapCounts.from_masks(ref, pred).pixel_accuracy


def precision(ref: ArrayLike, pred: ArrayLike) -> float:
    """Voxel-wise precision TP / (TP + FP).

    Examples
    --------
    >>> precision([[1, 1, 0, 0]], [[0, 1, 1, 1]])
    0.3333333333333333
    """
    return OverlapCounts.from_masks(ref, pred).precision


def recall(ref: ArrayLike, pred: ArrayLike) -> float:
    """Voxel-wise recall TP / (TP + FN).

    Examples
    --------
    >>> recall([[1, 1, 0, 0]], [[0, 1, 1, 1]])
    0.5
    """
    return OverlapCounts.from_masks(ref, pred).recall


def conformity(ref: ArrayLike, pred: ArrayLike) -> float | None:
    """Conformity exactly as written in 001 D.5 (formula D.4): ``1 − FP/TP``.

    Examples
    --------
    >>> conformity([[1, 1, 1, 0]], [[0, 1, 1, 1]])
    0.5
    """
    return OverlapCounts.from_masks(ref, pred).conformity


def conformity_classic(ref: ArrayLike, pred: ArrayLike) -> float | None:
    """Classic conformity ``1 − (FP + FN)/TP`` (Chang et al. 2009).

    Examples
    --------
    >>> conformity_classic([[1, 1, 1, 0]], [[0, 1, 1, 1]])
    0.0
    """
    return OverlapCounts.from_masks(ref, pred).conformity_classic


def volume_ml(mask: ArrayLike, spacing: float | Sequence[float] | None = None) -> float:
    """Volume of a 3-D mask's non-zero voxels in mL (spacing in mm, any axis order).

    Examples
    --------
    >>> import numpy as np
    >>> volume_ml(np.ones((10, 10, 10)), spacing=(1.0, 1.0, 1.0))
    1.0
    """
    arr = np.asarray(mask)
    sp = as_spacing(spacing, arr.ndim)
    return float(np.count_nonzero(arr) * np.prod(sp) / 1000.0)


@dataclass(frozen=True)
class LabelMetrics:
    """All segmentation metrics of one label of one case.

    ``volume_ref``/``volume_pred`` are in mm³ (3-D) or mm² (2-D); :meth:`to_dict` reports mL for
    3-D and mm² for 2-D. ``empty`` is ``"both"``, ``"ref"``, ``"pred"`` or ``None``.
    """

    label: int
    counts: OverlapCounts
    hd: float
    hd95: float
    assd: float
    volume_ref: float
    volume_pred: float
    ndim: int
    empty: str | None = None
    distance_worst_case: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def dice(self) -> float:
        """Dice coefficient (001 D.4)."""
        return self.counts.dice

    @property
    def iou(self) -> float:
        """Intersection over union (001 D.6)."""
        return self.counts.iou

    @property
    def pixel_accuracy(self) -> float:
        """Pixel accuracy (000 A.10.2 c)."""
        return self.counts.pixel_accuracy

    @property
    def precision(self) -> float:
        """Voxel-wise precision."""
        return self.counts.precision

    @property
    def recall(self) -> float:
        """Voxel-wise recall."""
        return self.counts.recall

    @property
    def conformity(self) -> float | None:
        """Conformity as in 001 D.5."""
        return self.counts.conformity

    @property
    def conformity_classic(self) -> float | None:
        """Classic conformity 1 − (FP+FN)/TP."""
        return self.counts.conformity_classic

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values; distances in mm, volumes in mL (3-D) or areas in mm² (2-D)."""
        c = self.counts
        out: dict[str, Any] = {
            "dice": self.dice,
            "iou": self.iou,
            "hd": self.hd,
            "hd95": self.hd95,
            "assd": self.assd,
            "precision": self.precision,
            "recall": self.recall,
            "pixel_accuracy": self.pixel_accuracy,
            "conformity": self.conformity,
            "conformity_classic": self.conformity_classic,
        }
        if self.ndim == 3:
            out["volume_ref_ml"] = self.volume_ref / 1000.0
            out["volume_pred_ml"] = self.volume_pred / 1000.0
            out["volume_diff_ml"] = (self.volume_pred - self.volume_ref) / 1000.0
        else:
            out["area_ref_mm2"] = self.volume_ref
            out["area_pred_mm2"] = self.volume_pred
            out["area_diff_mm2"] = self.volume_pred - self.volume_ref
        out.update(
            tp=c.tp,
            fp=c.fp,
            fn=c.fn,
            tn=c.tn,
            empty=self.empty,
            distance_worst_case=self.distance_worst_case,
            notes=list(self.notes),
        )
        return out


def _label_boxes(arr: NDArray[Any]) -> dict[int, tuple[slice, ...]]:
    """Bounding slices of each non-zero label of ``arr`` (one pass; bool arrays are label 1)."""
    full = tuple(slice(0, n) for n in arr.shape)
    if arr.dtype == bool:
        return {1: full} if arr.any() else {}
    top = int(arr.max()) if arr.size else 0
    if top == 0:
        return {}
    if top == 1:
        return {1: full}
    found = ndimage.find_objects(arr if arr.dtype != np.uint64 else arr.astype(np.int64))
    return {i + 1: sl for i, sl in enumerate(found) if sl is not None}


def _select(arr: NDArray[Any], label: int) -> NDArray[np.bool_]:
    if arr.dtype == bool:
        return arr if label == 1 else np.zeros(arr.shape, bool)
    return arr == label


def _union_slices(
    a: tuple[slice, ...] | None, b: tuple[slice, ...] | None, shape: tuple[int, ...]
) -> tuple[slice, ...]:
    """Union of two boxes grown by one voxel (the erosion margin), clipped to ``shape``."""
    parts = [x for x in (a, b) if x is not None]
    return tuple(
        slice(max(min(p[d].start for p in parts) - 1, 0), min(max(p[d].stop for p in parts) + 1, shape[d]))
        for d in range(len(shape))
    )


def segmentation_metrics(
    ref: ArrayLike,
    pred: ArrayLike,
    spacing: float | Sequence[float] | None = None,
    labels: Iterable[int] | None = None,
) -> dict[int, LabelMetrics]:
    """Every segmentation metric for each label of a reference/prediction pair.

    Parameters
    ----------
    ref, pred:
        Label masks of one shape, 2-D or 3-D (bool masks are label 1).
    spacing:
        Voxel size in mm in array-axis order (for a ``Volume``: ``volume.spacing[::-1]``).
    labels:
        Labels to evaluate; default every non-zero label found in either mask.

    Returns
    -------
    dict
        ``{label: LabelMetrics}`` in ascending label order.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((12, 12), np.uint8); ref[2:6, 2:6] = 1; ref[8:11, 8:11] = 2
    >>> pred = ref.copy(); pred[8:11, 8:11] = 0
    >>> res = segmentation_metrics(ref, pred)
    >>> res[1].dice, res[2].dice, res[2].empty, res[2].distance_worst_case
    (1.0, 0.0, 'pred', True)
    """
    r = as_label_array(ref, "reference mask")
    p = as_label_array(pred, "predicted mask")
    if r.shape != p.shape:
        raise GeometryError(
            f"reference and prediction differ in shape: {r.shape} vs {p.shape}",
            hint="masks must lie on one grid; resample explicitly first",
        )
    sp = as_spacing(spacing, r.ndim)
    boxes = foreground_boxes(r, p)
    present = [(_label_boxes(r[b]), _label_boxes(p[b])) for b in boxes]
    if labels is None:
        wanted = sorted(set().union(*(set(a) | set(b) for a, b in present))) if present else []
    else:
        wanted = sorted({int(v) for v in labels})
        if any(v <= 0 for v in wanted):
            raise InvalidInputError(f"labels must be positive integers (0 is background), got {wanted}")
        if r.dtype == bool and p.dtype == bool and wanted != [1]:
            raise InvalidInputError(f"binary masks only hold label 1, got labels {wanted}")
    total = int(r.size)
    voxel = float(np.prod(sp))
    diagonal = image_diagonal_mm(r.shape, sp)
    results: dict[int, LabelMetrics] = {}
    for label in wanted:
        tp = n_ref = n_pred = 0
        points = BorderPoints.empty()
        for box, (in_r, in_p) in zip(boxes, present, strict=True):
            if label not in in_r and label not in in_p:
                continue
            shape = tuple(sl.stop - sl.start for sl in box)
            sub = _union_slices(in_r.get(label), in_p.get(label), shape)
            cut = tuple(slice(b.start + c.start, b.start + c.stop) for b, c in zip(box, sub, strict=True))
            rm, pm = _select(r[cut], label), _select(p[cut], label)
            tp += int(np.count_nonzero(rm & pm))
            n_ref += int(np.count_nonzero(rm))
            n_pred += int(np.count_nonzero(pm))
            points.add(rm, pm, [c.start for c in cut], sp)
        counts = OverlapCounts(tp, n_pred - tp, n_ref - tp, total - n_ref - n_pred + tp)
        results[label] = _label_result(label, counts, points, voxel, diagonal, r.ndim)
    return results


def _label_result(
    label: int, counts: OverlapCounts, points: BorderPoints, voxel: float, diagonal: float, ndim: int
) -> LabelMetrics:
    n_ref, n_pred = counts.tp + counts.fn, counts.tp + counts.fp
    notes: list[str] = []
    empty: str | None = None
    worst = False
    if n_ref == 0 and n_pred == 0:
        empty, hd = "both", (0.0, 0.0, 0.0)
        notes.append("both masks empty: overlap metrics 1, distances 0")
    elif n_ref == 0 or n_pred == 0:
        empty = "ref" if n_ref == 0 else "pred"
        worst = True
        hd = (diagonal, diagonal, diagonal)
        notes.append(
            f"{'reference' if n_ref == 0 else 'prediction'} empty: distances set to the image "
            f"diagonal {diagonal:.3f} mm"
        )
    else:
        d = points.distances()
        hd = (d.hausdorff, d.hd95, d.assd)
    if counts.tp == 0 and empty != "both":
        notes.append("TP = 0: conformity undefined (null)")
    return LabelMetrics(
        label=label,
        counts=counts,
        hd=hd[0],
        hd95=hd[1],
        assd=hd[2],
        volume_ref=n_ref * voxel,
        volume_pred=n_pred * voxel,
        ndim=ndim,
        empty=empty,
        distance_worst_case=worst,
        notes=tuple(notes),
    )
