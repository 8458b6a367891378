"""Reference devices: shipped weights with records, loading, post-processing, decoding, verify, retraining."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.models import load_reference
from aimd.models.predictor import Predictor
from aimd.models.reference import read_record, shipped_status, train_recipe
from aimd.models.reference.lesions import MIN_LESION_MM3, postprocess
from aimd.models.reference.nodules import decode, heatmap_targets
from aimd.models.reference.phantomdata import HELD_OUT_SITES, TRAIN_SITES, build_cases, data_sha256
from aimd.models.reference.shipped import WEIGHTS_DIR

runner = CliRunner()


@pytest.mark.parametrize("name", ["device-lesions"])
def test_shipped_weights_match_their_record(name: str) -> None:
    record = read_record(name)
    weights = WEIGHTS_DIR / record["weights_file"]
    assert sha256_file(weights) == record["weights_sha256"]
    assert weights.stat().st_size < 2_000_000
    assert record["training_data"]["sites"] == list(TRAIN_SITES)
    assert record["held_out"]["sites"] == sorted(HELD_OUT_SITES)
    assert not set(record["training_data"]["sites"]) & set(record["held_out"]["sites"])
    for key in ("seed", "recipe", "code", "machine", "training", "metrics_summary"):
        assert record[key] is not None
    status = shipped_status(name)
    assert status["trained"] and status["sha256_ok"]


def test_shipped_lesion_model_finds_lesions_on_an_unseen_site() -> None:
    seg = load_reference("device-lesions")
    assert isinstance(seg, Predictor)
    case = next(
        c
        for c in build_cases(seed=77, count=6, size=64, sites=HELD_OUT_SITES)
        if any(le.diameter_mm >= 6 for le in c.lesions)
    )
    pred = seg.predict_volume(case.grid.volume(case.ct, modality="CT"))
    assert pred.labels is not None and pred.labels.shape == case.ct.shape
    truth = case.instances > 0
    overlap = np.logical_and(truth, pred.labels.array > 0).sum() / truth.sum()
    assert overlap > 0.3
    assert pred.record["lesions"] and all(seg.threshold <= f["score"] <= 1 for f in pred.record["lesions"])
    assert f"sigmoid ≥ {seg.threshold:g}," in pred.record["postprocessing"]


def test_changed_weights_are_refused(tmp_path: Path) -> None:
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"device-lesions{suffix}", tmp_path)
    assert load_reference("device-lesions", folder=tmp_path).metadata["weights_sha256"]
    data = bytearray((tmp_path / "device-lesions.pt").read_bytes())
    data[-100] ^= 0xFF
    (tmp_path / "device-lesions.pt").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="differs from the run record"):
        load_reference("device-lesions", folder=tmp_path)
    with pytest.raises(InvalidInputError, match="unknown reference model"):
        load_reference("device-unknown")


def test_lesion_postprocessing_keeps_components_above_min_size() -> None:
    probs = np.zeros((20, 20, 20), np.float32)
    probs[2:6, 2:6, 2:6] = 0.8  # 64 mm³: kept
    probs[10:12, 10:12, 10:12] = 0.95  # 8 mm³: below the minimum, dropped
    probs[15:18, 2:5, 15:18] = 0.4  # under the threshold
    instances, found = postprocess(probs, (1.0, 1.0, 1.0))
    assert MIN_LESION_MM3 > 8
    assert [f["voxels"] for f in found] == [64]
    assert found[0]["score"] == pytest.approx(0.8)
    assert (instances > 0).sum() == 64 and instances[11, 11, 11] == 0
    _, none = postprocess(np.full((4, 4, 4), 0.49, np.float32), (1.0, 1.0, 1.0))
    assert none == []


def test_heatmap_targets_decode_back_to_the_box() -> None:
    box = {"xyxy": [10.5, 20.5, 18.5, 28.5], "centre_px": [14.5, 24.5]}
    heat, radius = heatmap_targets((48, 32), [box])
    assert heat[24, 14] == 1.0 and radius[24, 14] == 4.0 and (radius >= 0).sum() == 1
    assert heat[24, 18] < 0.2
    probs = np.stack([heat, np.where(radius > 0, radius / 32.0, 0.0)]).astype(np.float32)
    found = decode(probs)
    assert found[0]["box"] == [10.5, 20.5, 18.5, 28.5] and found[0]["score"] == 1.0
    assert decode(np.zeros((2, 16, 16), np.float32)) == []


def test_phantom_sets_are_reproducible_and_hashed() -> None:
    a = build_cases(seed=3, count=2, size=32, sites=("SITE_A",))
    b = build_cases(seed=3, count=2, size=32, sites=("SITE_A",))
    c = build_cases(seed=4, count=2, size=32, sites=("SITE_A",))
    assert data_sha256(a) == data_sha256(b) != data_sha256(c)
    with pytest.raises(InvalidInputError, match="unknown site"):
        build_cases(seed=3, count=1, size=32, sites=("SITE_Z",))


def test_recipe_cli_rejects_bad_names_and_settings(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["model", "train", "--recipe", "device-x", "--out", str(tmp_path)])
    assert isinstance(bad.exception, InvalidInputError) and "unknown reference model" in str(bad.exception)
    bad_set = runner.invoke(
        app, ["model", "train", "--recipe", "device-nodules", "--set", "stepz=3", "--out", str(tmp_path)]
    )
    assert isinstance(bad_set.exception, InvalidInputError) and "unknown recipe setting" in str(bad_set.exception)
    missing = runner.invoke(app, ["model", "train", "--task", "seg"])
    assert isinstance(missing.exception, InvalidInputError) and "--model" in str(missing.exception)
    assert bad.exception.exit_code == 2


@pytest.mark.parametrize(
    ("name", "settings", "drop"),
    [
        ("device-lesions", {"steps": 40, "train_cases": 8}, 0.99),
        ("device-nodules", {"steps": 120, "train_cases": 40}, 0.8),
    ],
)
def test_short_recipe_retrains_from_scratch(tmp_path: Path, name: str, settings: dict[str, int], drop: float) -> None:
    record = train_recipe(name, tmp_path, overrides=settings, eval_cases=4, validation_cases=4)
    curve = record["training"]["curve"]
    assert curve[-1]["step"] == settings["steps"]
    first, last = curve[0]["loss"], curve[-1]["loss"]
    assert last < drop * first, curve
    assert record["training_data"]["cases"] == settings["train_cases"]
    model = load_reference(name, folder=tmp_path)
    assert model.metadata["weights_sha256"] == record["weights_sha256"] == sha256_file(tmp_path / f"{name}.pt")
    if name == "device-lesions":  # operating point from validation cases of the training sites, or the fallback
        point = record["operating_point"]
        assert point["validation"]["data"]["sites"] == list(TRAIN_SITES)
        assert point["validation"]["data"]["cases"] == 4 and len(point["validation"]["sweep"]) > 1
        assert point["source"].startswith("validation") == (point["validation"]["chosen"] is not None)
        assert model.threshold == point["threshold"]


def test_predict_cli_runs_a_reference_device_by_name(tmp_path: Path) -> None:
    from aimd.imaging.io import write_volume

    case = build_cases(seed=79, count=1, size=48, sites=("SITE_F",))[0]
    ct = tmp_path / "ct.nii.gz"
    write_volume(case.grid.volume(case.ct, modality="CT"), ct)
    result = runner.invoke(
        app,
        [
            "model",
            "predict",
            "device-lesions",
            str(ct),
            "--modality",
            "CT",
            "--out",
            str(tmp_path / "mask.nii.gz"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["adapter"] == "torch" and isinstance(payload["lesions"], list)
    assert (tmp_path / "mask.nii.gz").is_file()
