"""Lesion-wise evaluation of ``device-lesions`` (003 §4.2.2): voxel Dice, sensitivity, FPs per case, FROC.

A found lesion matches a reference lesion when their 3-D boxes overlap with IoU ≥ :data:`MATCH_IOU`
(aimd.metrics matching rule). Sensitivity counts reference lesions ≥ :data:`MIN_REPORTED_DIAMETER_MM`;
a finding on a smaller lesion is neither a hit nor a false positive (an ignore region). The
held-out evaluation (:func:`evaluate_lesions`) and the operating point sweep
(:mod:`aimd.models.reference.operating_point`) count with the same :func:`match_case`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from aimd.metrics.detection import ImageObjects, match_image
from aimd.metrics.detection_rates import froc
from aimd.metrics.segmentation import dice, precision, recall
from aimd.metrics.surface import hausdorff_distance_95
from aimd.models.reference.common import Stopwatch, froc_ci, headline, mean_ci, ratio_ci
from aimd.phantoms.case import PhantomCase

if TYPE_CHECKING:
    from aimd.models.reference.lesions import LesionSegmenter

MIN_REPORTED_DIAMETER_MM = 5.0
MATCH_IOU = 0.1


def _box(coords_min: Sequence[int], coords_max: Sequence[int]) -> list[float]:
    return [float(v) for v in coords_min] + [float(v) + 1.0 for v in coords_max]


def reference_lesions(case: PhantomCase) -> dict[int, bool]:
    """Instance number → whether the lesion counts for sensitivity (diameter ≥ 5 mm)."""
    return {le.instance: le.diameter_mm >= MIN_REPORTED_DIAMETER_MM for le in case.lesions}


@dataclass(frozen=True)
class CaseMatch:
    """Lesion-wise outcome of one case: reference and kept findings (for the FROC), hits, false positives."""

    ref: ImageObjects
    det: ImageObjects
    hits: int
    lesions: int
    false_positives: int


def match_case(
    case_id: str, instances: NDArray[Any], lesions: dict[int, bool], found: list[dict[str, Any]]
) -> CaseMatch:
    """Match ``found`` lesions to the reference ``instances`` (3-D box IoU ≥ :data:`MATCH_IOU`).

    ``lesions`` maps each reference instance to whether it counts (≥ 5 mm). A finding on a lesion that
    does not count is neither a hit nor a false positive and is left out of the kept findings.

    Example
    -------
    >>> ref = np.zeros((8, 8, 8), np.int32); ref[1:4, 1:4, 1:4] = 1; ref[6:8, 6:8, 6:8] = 2
    >>> hit = {"bbox_voxel": {"min": [1, 1, 1], "max": [3, 3, 3]}, "score": 0.9}
    >>> fp = {"bbox_voxel": {"min": [5, 0, 0], "max": [6, 1, 1]}, "score": 0.6}
    >>> m = match_case("c", ref, {1: True, 2: False}, [hit, fp])
    >>> m.hits, m.lesions, m.false_positives
    (1, 1, 1)
    """
    refs, big = [], []
    for instance, counts in sorted(lesions.items()):
        kk, jj, ii = np.nonzero(instances == instance)
        if kk.size == 0:
            continue
        refs.append(_box((ii.min(), jj.min(), kk.min()), (ii.max(), jj.max(), kk.max())))
        big.append(counts)
    dets = [_box(f["bbox_voxel"]["min"], f["bbox_voxel"]["max"]) for f in found]
    ref = ImageObjects.boxes_from_corners(case_id, np.array(refs).reshape(-1, 6))
    det = ImageObjects.boxes_from_corners(case_id, np.array(dets).reshape(-1, 6), scores=[f["score"] for f in found])
    is_big = np.array(big, bool)
    matched = match_image(ref, det, criterion="iou", threshold=MATCH_IOU).get(1)
    det_to_ref = matched.det_to_ref if matched is not None else np.full(len(det), -1)
    keep = np.array([r < 0 or is_big[r] for r in det_to_ref], bool) if len(det) else np.zeros(0, bool)
    return CaseMatch(
        ref=ref.subset(is_big) if len(ref) else ref,
        det=det.subset(keep) if len(det) else det,
        hits=sum(1 for r in det_to_ref if r >= 0 and is_big[r]),
        lesions=int(is_big.sum()),
        false_positives=int(np.count_nonzero(det_to_ref < 0)),
    )


def evaluate_lesions(
    segmenter: LesionSegmenter,
    cases: Sequence[PhantomCase],
    *,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Voxel Dice, lesion-wise sensitivity / FPs per case at the operating point, FROC; 95 % CIs over cases.

    A found lesion matches a reference lesion when their boxes overlap with IoU ≥ :data:`MATCH_IOU`
    (aimd.metrics matching rule). Sensitivity counts reference lesions ≥ 5 mm; a finding that matches
    a smaller lesion is neither a hit nor a false positive (it is left out, as an ignore region).
    """
    watch = Stopwatch()
    dices, hits, n_big, fps = [], [], [], []
    precisions: list[float] = []
    recalls: list[float] = []
    hd95s: list[float] = []
    refs_big: list[ImageObjects] = []
    dets_kept: list[ImageObjects] = []
    per_case = []
    for i, case in enumerate(cases):
        vol = case.grid.volume(case.ct, modality="CT")
        instances, found = segmenter.find_lesions(vol)
        truth = case.instances > 0
        pred = instances > 0
        case_dice = dice(truth, pred) if truth.any() else None
        if truth.any():
            precisions.append(precision(truth, pred) if pred.any() else 0.0)
            recalls.append(recall(truth, pred))
            sx, sy, sz = case.grid.spacing
            if pred.any():
                hd95s.append(hausdorff_distance_95(truth, pred, (sz, sy, sx)))
        m = match_case(case.case_id, case.instances, reference_lesions(case), found)
        refs_big.append(m.ref)
        dets_kept.append(m.det)
        hits.append(m.hits)
        n_big.append(m.lesions)
        fps.append(m.false_positives)
        if case_dice is not None:
            dices.append(case_dice)
        per_case.append(
            {
                "case": case.case_id,
                "site": case.site.site_id,
                "dice": case_dice,
                "lesions": len(case.lesions),
                "lesions_5mm": m.lesions,
                "found": len(found),
                "hits_5mm": m.hits,
                "false_positives": m.false_positives,
            }
        )
        if progress:
            progress(i + 1)
    curve = froc(refs_big, dets_kept, criterion="iou", threshold=MATCH_IOU, rates=(0.125, 0.25, 0.5, 1, 2, 4))
    at_one = froc_ci(refs_big, dets_kept, rate=1.0, seed=seed, criterion="iou", threshold=MATCH_IOU)
    n_cases = len(cases)
    return {
        "cases": n_cases,
        "sites": sorted({c.site.site_id for c in cases}),
        "lesions_5mm": int(sum(n_big)),
        "lesions_all": int(sum(len(c.lesions) for c in cases)),
        "dice": mean_ci(dices, seed=seed),
        "dice_unit": "per case with at least one lesion: voxel Dice of the post-processed mask vs all lesion voxels",
        "voxel_precision": mean_ci(precisions, seed=seed),
        "voxel_recall": mean_ci(recalls, seed=seed),
        "hd95_mm": mean_ci(hd95s, seed=seed),
        "hd95_unit": "per case with lesions found and present (mm)",
        "sensitivity_5mm": ratio_ci(np.array(hits), np.array(n_big), seed=seed),
        "fp_per_case": ratio_ci(np.array(fps), np.ones(n_cases), seed=seed),
        "operating_point": f"probability ≥ {segmenter.threshold:g}, components ≥ {segmenter.min_lesion_mm3:g} mm³",
        "operating_point_source": segmenter.metadata["operating_point"].get("source", "run record"),
        "froc": curve.to_dict(),
        "froc_sensitivity_at_1fp": at_one,
        "matching": f"3-D box IoU ≥ {MATCH_IOU:g}; findings on lesions < {MIN_REPORTED_DIAMETER_MM:g} mm ignored",
        "per_case": per_case,
        "seconds": watch.read(),
    }


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of :func:`evaluate_lesions` (with their CIs) for records and the zoo."""
    return headline(metrics, ("dice", "sensitivity_5mm", "fp_per_case", "froc_sensitivity_at_1fp"))


__all__ = [
    "MATCH_IOU",
    "MIN_REPORTED_DIAMETER_MM",
    "CaseMatch",
    "evaluate_lesions",
    "match_case",
    "reference_lesions",
    "summary",
]
