"""Operating point of ``device-lesions``, chosen on a validation set of the training sites (003 §4.2.2).

The lesion-wise output depends on two settings: the probability threshold and the minimum lesion
volume of the post-processing. They are chosen once per set of weights, never on the held-out sites:

1. **Validation set**: :data:`VALIDATION_CASES` fresh phantom cases of the *training* sites
   (:data:`~aimd.models.reference.phantomdata.TRAIN_SITES`), master seed :data:`VALIDATION_SEED`
   (the training set uses another seed, so no validation case was trained on). Its arrays are hashed.
2. **Sweep**: the probability map of each case is computed once; every pair of :data:`THRESHOLDS`
   × :data:`MIN_SIZES_MM3` is post-processed and matched like the held-out evaluation (3-D box IoU
   ≥ 0.1, lesions ≥ 5 mm count, findings on smaller lesions ignored).
3. **Rule** (:data:`RULE`, :func:`select_operating_point`): among the points that keep the device's
   other two requirements on validation — at most :data:`MAX_FP_PER_CASE` false positive per case and
   mean voxel Dice ≥ :data:`MIN_DICE` — the highest lesion-wise sensitivity; ties → the higher
   threshold, then the larger minimum volume (the more conservative point). No point within both
   limits → :class:`~aimd.core.errors.InvalidInputError` (no point is invented, no limit loosened).

The chosen point, the rule, the validation data (settings and SHA-256) and the whole sweep are stored
in the run record under ``operating_point``; the predictor, the service and the IQ baseline read it
from there.

Example
-------
>>> rows = [sweep_row(0.3, 15.0, hits=9, lesions=10, false_positives=14, cases=10, dice_mean=0.8),
...         sweep_row(0.5, 15.0, hits=9, lesions=10, false_positives=3, cases=10, dice_mean=0.8),
...         sweep_row(0.7, 15.0, hits=8, lesions=10, false_positives=1, cases=10, dice_mean=0.8)]
>>> chosen = select_operating_point(rows)
>>> chosen["threshold"], chosen["sensitivity_5mm"], chosen["fp_per_case"]
(0.5, 0.9, 0.3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.metrics.segmentation import dice
from aimd.models.reference.lesions import LesionSegmenter, match_case, postprocess, reference_lesions
from aimd.models.reference.phantomdata import TRAIN_SITES, build_cases, data_settings, data_sha256

VALIDATION_SEED = 1850
VALIDATION_CASES = 60
THRESHOLDS = tuple(round(0.05 * k, 2) for k in range(1, 20))
MIN_SIZES_MM3 = (0.0, 8.0, 15.0, 30.0, 60.0)
MAX_FP_PER_CASE = 1.0
MIN_DICE = 0.70
RULE = (
    f"highest lesion-wise sensitivity (lesions ≥ 5 mm) on the validation set among the points with at most "
    f"{MAX_FP_PER_CASE:g} false positive per case and mean voxel Dice ≥ {MIN_DICE:g}; ties → higher threshold, "
    "then larger minimum lesion volume"
)


@dataclass(frozen=True)
class ValidationCase:
    """One validation case: the model's probability map and the reference lesions on the same grid."""

    case_id: str
    probs: NDArray[np.float32]
    spacing: tuple[float, float, float]
    instances: NDArray[Any]
    lesions: dict[int, bool]


def sweep_row(
    threshold: float,
    min_lesion_mm3: float,
    *,
    hits: int,
    lesions: int,
    false_positives: int,
    cases: int,
    dice_mean: float | None = None,
) -> dict[str, Any]:
    """One point of the sweep with its counts, sensitivity and false positives per case."""
    return {
        "threshold": float(threshold),
        "min_lesion_mm3": float(min_lesion_mm3),
        "hits_5mm": int(hits),
        "lesions_5mm": int(lesions),
        "false_positives": int(false_positives),
        "cases": int(cases),
        "sensitivity_5mm": round(hits / lesions, 6) if lesions else None,
        "fp_per_case": round(false_positives / cases, 6),
        "dice": None if dice_mean is None else round(dice_mean, 6),
    }


def sweep(
    cases: Sequence[ValidationCase],
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    min_sizes_mm3: Sequence[float] = MIN_SIZES_MM3,
) -> list[dict[str, Any]]:
    """Lesion-wise counts of every (threshold, minimum volume) pair over ``cases``.

    Example
    -------
    >>> ref = np.zeros((12, 12, 12), np.int32); ref[2:6, 2:6, 2:6] = 1
    >>> p = np.zeros(ref.shape, np.float32); p[2:6, 2:6, 2:6] = 0.4; p[9:11, 9:11, 9:11] = 0.8
    >>> rows = sweep([ValidationCase("c", p, (1.0, 1.0, 1.0), ref, {1: True})], thresholds=(0.3, 0.5),
    ...              min_sizes_mm3=(0.0,))
    >>> [(r["threshold"], r["hits_5mm"], r["false_positives"]) for r in rows]
    [(0.3, 1, 1), (0.5, 0, 1)]
    """
    if not cases:
        raise InvalidInputError("no validation cases", where="validation set", hint="pass at least one case")
    rows = []
    for t in thresholds:
        for m in min_sizes_mm3:
            hits = lesions = fps = 0
            dices = []
            for case in cases:
                inst, found = postprocess(case.probs, case.spacing, threshold=t, min_lesion_mm3=m)
                match = match_case(case.case_id, case.instances, case.lesions, found)
                hits, lesions, fps = hits + match.hits, lesions + match.lesions, fps + match.false_positives
                if (case.instances > 0).any():
                    dices.append(dice(case.instances > 0, inst > 0))
            rows.append(
                sweep_row(
                    t,
                    m,
                    hits=hits,
                    lesions=lesions,
                    false_positives=fps,
                    cases=len(cases),
                    dice_mean=float(np.mean(dices)) if dices else None,
                )
            )
    return rows


def select_operating_point(
    rows: Sequence[dict[str, Any]], *, max_fp_per_case: float = MAX_FP_PER_CASE, min_dice: float = MIN_DICE
) -> dict[str, Any]:
    """The sweep row chosen by :data:`RULE`; no row within both limits → InvalidInputError."""
    allowed = [
        r
        for r in rows
        if r["fp_per_case"] <= max_fp_per_case
        and r["sensitivity_5mm"] is not None
        and r["dice"] is not None
        and r["dice"] >= min_dice
    ]
    if not allowed:
        least = min((r["fp_per_case"] for r in rows), default=None)
        best = max((r["dice"] for r in rows if r["dice"] is not None), default=None)
        raise InvalidInputError(
            f"no operating point has at most {max_fp_per_case:g} false positive per case and mean Dice ≥ "
            f"{min_dice:g} on the validation set (fewest false positives per case: {least}, best Dice: {best})",
            where="operating point selection",
            hint="the model is not usable at these limits: retrain it (aimd model train --recipe device-lesions) "
            "rather than loosen the limits",
        )
    return dict(max(allowed, key=lambda r: (r["sensitivity_5mm"], r["threshold"], r["min_lesion_mm3"])))


def validation_cases(
    model: LesionSegmenter,
    *,
    seed: int = VALIDATION_SEED,
    count: int = VALIDATION_CASES,
    size: int = 64,
    progress: Callable[[int], object] | None = None,
) -> tuple[list[ValidationCase], dict[str, Any]]:
    """Probability maps of ``model`` on the validation cases of the training sites, and the data's record."""
    cases = build_cases(seed=seed, count=count, size=size, sites=TRAIN_SITES)
    out = []
    for i, case in enumerate(cases):
        probs = model.probability_map(case.grid.volume(case.ct, modality="CT"))
        out.append(ValidationCase(case.case_id, probs, case.grid.spacing, case.instances, reference_lesions(case)))
        if progress:
            progress(i + 1)
    data = {**data_settings(seed=seed, count=count, size=size, sites=TRAIN_SITES), "sha256": data_sha256(cases)}
    return out, data


def choose_operating_point(
    model: LesionSegmenter,
    *,
    seed: int = VALIDATION_SEED,
    count: int = VALIDATION_CASES,
    size: int = 64,
    strict: bool = True,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Sweep ``model`` on the validation set and pick its operating point by :data:`RULE` (for the run record).

    No point within the limits: ``strict`` raises :class:`InvalidInputError`; otherwise (a fresh training
    run, whose record must still be written) the point is the fallback 0.5 / 15 mm³, with the reason.
    """
    from aimd.models.reference.lesions import MIN_LESION_MM3, THRESHOLD

    cases, data = validation_cases(model, seed=seed, count=count, size=size, progress=progress)
    rows = sweep(cases)
    try:
        chosen: dict[str, Any] | None = select_operating_point(rows)
    except InvalidInputError as err:
        if strict:
            raise
        chosen, source = None, f"fallback: {err.args[0]}"
    else:
        source = "validation set of the training sites (run record)"
    return {
        "threshold": THRESHOLD if chosen is None else chosen["threshold"],
        "min_lesion_mm3": MIN_LESION_MM3 if chosen is None else chosen["min_lesion_mm3"],
        "source": source,
        "rule": RULE,
        "validation": {"data": data, "chosen": chosen, "sweep": rows},
    }


__all__ = [
    "MAX_FP_PER_CASE",
    "MIN_DICE",
    "MIN_SIZES_MM3",
    "RULE",
    "THRESHOLDS",
    "VALIDATION_CASES",
    "VALIDATION_SEED",
    "ValidationCase",
    "choose_operating_point",
    "select_operating_point",
    "sweep",
    "sweep_row",
    "validation_cases",
]
