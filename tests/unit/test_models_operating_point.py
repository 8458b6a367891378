"""Operating point of device-lesions: chosen on validation by the documented rule, read from the run record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aimd.core.errors import InvalidInputError
from aimd.models import load_reference
from aimd.models.reference import read_record
from aimd.models.reference.operating_point import (
    MAX_FP_PER_CASE,
    MIN_DICE,
    ValidationCase,
    select_operating_point,
    sweep,
    sweep_row,
)
from aimd.models.reference.phantomdata import HELD_OUT_SITES, TRAIN_SITES
from aimd.models.reference.shipped import WEIGHTS_DIR


def _row(t: float, m: float, hits: int, fps: int, dice: float = 0.8) -> dict[str, Any]:
    return sweep_row(t, m, hits=hits, lesions=20, false_positives=fps, cases=10, dice_mean=dice)


def test_rule_takes_the_most_sensitive_point_within_both_limits_ties_to_the_higher_threshold() -> None:
    rows = [
        _row(0.1, 15, hits=20, fps=25),  # most sensitive, but 2.5 FP per case
        _row(0.2, 15, hits=20, fps=8, dice=0.65),  # within the FP limit, Dice below the limit
        _row(0.3, 0, hits=19, fps=10),  # 1.0 FP per case: allowed
        _row(0.3, 30, hits=19, fps=4),
        _row(0.4, 15, hits=19, fps=3),  # same sensitivity, higher threshold: chosen
        _row(0.6, 15, hits=17, fps=1),
    ]
    chosen = select_operating_point(rows)
    assert (chosen["threshold"], chosen["min_lesion_mm3"], chosen["sensitivity_5mm"]) == (0.4, 15.0, 0.95)
    # at one threshold, the tie goes to the larger minimum volume
    assert select_operating_point(rows[2:4])["min_lesion_mm3"] == 30.0
    # the limits are the device's requirements, not free parameters of the sweep
    assert (MAX_FP_PER_CASE, MIN_DICE) == (1.0, 0.70)


def test_no_point_within_the_limits_is_an_error_not_a_loosened_limit() -> None:
    too_many = [_row(t, 15, hits=20, fps=11) for t in (0.3, 0.5, 0.7)]  # 1.1 FP per case everywhere
    with pytest.raises(InvalidInputError, match="fewest false positives per case: 1.1"):
        select_operating_point(too_many)
    with pytest.raises(InvalidInputError, match="best Dice: 0.6"):
        select_operating_point([_row(0.5, 15, hits=20, fps=0, dice=0.6)])


def _validation_set(fp_blobs: int) -> list[ValidationCase]:
    """Two cases: a 5³-voxel lesion the model scores 0.35, and ``fp_blobs`` 2³-voxel blobs it scores 0.9."""
    cases = []
    for k in range(2):
        ref = np.zeros((24, 24, 24), np.int32)
        ref[3:8, 3:8, 3:8] = 1
        probs = np.zeros(ref.shape, np.float32)
        probs[3:8, 3:8, 3:8] = 0.35
        for b in range(fp_blobs):
            probs[12 + 4 * b : 14 + 4 * b, 15:17, 15:17] = 0.9
        cases.append(ValidationCase(f"v{k}", probs, (1.0, 1.0, 1.0), ref, {1: True}))
    return cases


def test_sweep_on_a_synthetic_validation_set_picks_the_documented_point() -> None:
    rows = sweep(_validation_set(fp_blobs=1), thresholds=(0.3, 0.5), min_sizes_mm3=(0.0, 15.0))
    by = {(r["threshold"], r["min_lesion_mm3"]): r for r in rows}
    assert (by[0.3, 0.0]["hits_5mm"], by[0.3, 0.0]["fp_per_case"]) == (2, 1.0)  # 8 mm³ blob kept: 1 FP per case
    assert (by[0.3, 15.0]["hits_5mm"], by[0.3, 15.0]["fp_per_case"], by[0.3, 15.0]["dice"]) == (2, 0.0, 1.0)
    assert by[0.5, 0.0]["hits_5mm"] == 0 and by[0.5, 15.0]["sensitivity_5mm"] == 0.0
    chosen = select_operating_point(rows)  # full sensitivity at 0.3; tie → the larger minimum volume
    assert (chosen["threshold"], chosen["min_lesion_mm3"]) == (0.3, 15.0)
    # failing direction: three 8 mm³ blobs per case, no minimum volume to drop them → 3 FP per case
    crowded = sweep(_validation_set(fp_blobs=3), thresholds=(0.3, 0.5), min_sizes_mm3=(0.0,))
    assert min(r["fp_per_case"] for r in crowded) == 3.0
    with pytest.raises(InvalidInputError, match="no operating point"):
        select_operating_point(crowded)


def test_shipped_record_holds_an_operating_point_chosen_on_training_sites() -> None:
    record = read_record("device-lesions")
    point = record["operating_point"]
    validation = point["validation"]
    assert validation["data"]["sites"] == list(TRAIN_SITES)
    assert not set(validation["data"]["sites"]) & set(HELD_OUT_SITES)
    assert validation["data"]["seed"] != record["training_data"]["seed"]  # other cases than the training ones
    assert select_operating_point(validation["sweep"]) == validation["chosen"]  # the stored sweep gives the point
    assert (point["threshold"], point["min_lesion_mm3"]) == (
        validation["chosen"]["threshold"],
        validation["chosen"]["min_lesion_mm3"],
    )
    assert record["held_out"]["operating_point"] == (
        f"probability ≥ {point['threshold']:g}, components ≥ {point['min_lesion_mm3']:g} mm³"
    )


def _copy_with_point(folder: Path, point: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"device-lesions{suffix}", folder)
    record = json.loads((folder / "device-lesions.json").read_text())
    if point is None:
        record.pop("operating_point")
    else:
        record["operating_point"].update(point)
    (folder / "device-lesions.json").write_text(json.dumps(record))


def test_predictor_uses_the_record_point_and_falls_back_without_one(tmp_path: Path) -> None:
    _copy_with_point(tmp_path / "a", {"threshold": 0.7, "min_lesion_mm3": 40.0})
    seg = load_reference("device-lesions", folder=tmp_path / "a")
    assert (seg.threshold, seg.min_lesion_mm3, seg.output_spec.threshold) == (0.7, 40.0, 0.7)
    probs = np.zeros((20, 20, 20), np.float32)
    probs[2:6, 2:6, 2:6] = 0.6  # 64 mm³ under 0.7
    probs[10:14, 10:14, 10:14] = 0.8  # 64 mm³ above 0.7
    probs[16:19, 16:19, 16:19] = 0.9  # 27 mm³: under 40 mm³
    assert [f["voxels"] for f in seg.postprocess(probs, (1.0, 1.0, 1.0))[1]] == [64]
    _copy_with_point(tmp_path / "b", None)
    old = load_reference("device-lesions", folder=tmp_path / "b")
    assert (old.threshold, old.min_lesion_mm3) == (0.5, 15.0)
    assert old.metadata["operating_point"]["source"].startswith("fallback")
    assert [f["voxels"] for f in old.postprocess(probs, (1.0, 1.0, 1.0))[1]] == [64, 64, 27]
    _copy_with_point(tmp_path / "c", {"threshold": 1.5})
    with pytest.raises(InvalidInputError, match="operating point out of range"):
        load_reference("device-lesions", folder=tmp_path / "c")


def test_served_device_runs_at_the_record_point() -> None:
    from aimd.serving.registry import ModelRegistry

    reg = ModelRegistry()
    reg.load("lesions", "device-lesions")
    served = reg.get("lesions").predictor
    point = read_record("device-lesions")["operating_point"]
    assert (served.threshold, served.min_lesion_mm3) == (point["threshold"], point["min_lesion_mm3"])
    assert reg.get("lesions").public()["outputs"][0]["spec"]["threshold"] == point["threshold"]


def test_iq_baseline_counts_at_the_record_point_and_follows_a_new_one(tmp_path: Path) -> None:
    from aimd.iq.baseline import reference_baseline
    from aimd.models.reference.phantomdata import build_cases

    _copy_with_point(tmp_path / "w", {"threshold": 0.9, "min_lesion_mm3": 15.0})
    first = reference_baseline(tmp_path / "b", weights=tmp_path / "w", count=1)
    assert first["operating_point"]["threshold"] == 0.9 and "probability ≥ 0.9" in first["reference_source"]
    case = build_cases(seed=first["settings"]["seed"], count=1, size=48, sites=HELD_OUT_SITES)[0]
    seg = load_reference("device-lesions", folder=tmp_path / "w")
    probs = seg.probability_map(case.grid.volume(case.ct, modality="CT"))
    for threshold in (0.9, 0.2):
        _copy_with_point(tmp_path / "w", {"threshold": threshold, "min_lesion_mm3": 15.0})
        baseline = reference_baseline(tmp_path / "b", weights=tmp_path / "w", count=1)
        seg.set_operating_point({"threshold": threshold, "min_lesion_mm3": 15.0})
        assert baseline["operating_point"]["threshold"] == threshold  # a new point → regenerated
        assert baseline["cases"][0]["reference"] == str(len(seg.postprocess(probs, case.grid.spacing)[1]))
