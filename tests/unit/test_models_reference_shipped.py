"""Shipped device-nodules weights, verify, zoo status and the demo's reference stage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.models import load_reference
from aimd.models.predictor import Predictor
from aimd.models.reference import RECIPES, read_record, shipped_status, verify_reference
from aimd.models.reference.nodules import dx_volume
from aimd.models.reference.phantomdata import HELD_OUT_SITES, TRAIN_SITES, build_cases
from aimd.models.reference.shipped import WEIGHTS_DIR

runner = CliRunner()


def test_shipped_nodule_weights_match_their_record() -> None:
    record = read_record("device-nodules")
    assert sha256_file(WEIGHTS_DIR / record["weights_file"]) == record["weights_sha256"]
    assert record["training_data"]["sites"] == list(TRAIN_SITES)
    assert record["held_out"]["sites"] == sorted(HELD_OUT_SITES)
    assert shipped_status("device-nodules")["sha256_ok"]


def test_shipped_nodule_model_returns_boxes_with_scores() -> None:
    det = load_reference("device-nodules")
    assert isinstance(det, Predictor)
    case = next(
        c
        for c in build_cases(seed=78, count=8, size=64, sites=HELD_OUT_SITES)
        if any(le.organ == "lung" and le.diameter_mm >= 6 for le in c.lesions)
    )
    pred = det.predict_volume(dx_volume(case))
    found = pred.record["detections"][0]
    assert pred.scores is not None and pred.scores.shape == (1,)
    assert found and all(f["box"][0] < f["box"][2] and f["box"][1] < f["box"][3] for f in found)
    with pytest.raises(InvalidInputError, match="expects DX"):
        det.predict_volume(case.grid.volume(case.ct, modality="CT"))


def test_verify_passes_when_the_cis_overlap_and_fails_when_apart(tmp_path: Path) -> None:
    for suffix in (".pt", ".json"):
        shutil.copy(WEIGHTS_DIR / f"device-nodules{suffix}", tmp_path)
    record = json.loads((tmp_path / "device-nodules.json").read_text())
    for v in record["metrics_summary"].values():
        v.update(ci_low=-1.0, ci_high=100.0)
    (tmp_path / "device-nodules.json").write_text(json.dumps(record))
    ok = verify_reference("device-nodules", folder=tmp_path, cases=6)
    assert ok["passed"] and ok["data"]["sites"] == list(HELD_OUT_SITES)
    for v in record["metrics_summary"].values():
        v.update(ci_low=50.0, ci_high=60.0)
    (tmp_path / "device-nodules.json").write_text(json.dumps(record))
    bad = verify_reference("device-nodules", folder=tmp_path, cases=6)
    assert not bad["passed"] and {c["verdict"] for c in bad["checks"].values()} <= {"fail", "not evaluated"}


def test_zoo_marks_reference_devices_trained() -> None:
    result = runner.invoke(app, ["model", "zoo", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name in RECIPES:
        assert rows[name]["trained"] is True and rows[name]["sha256_ok"] is True
    table = runner.invoke(app, ["model", "zoo"])
    assert "device-lesions" in table.stdout and "reference devices" in table.stdout


def test_demo_reference_stage_uses_the_shipped_weights(tmp_path: Path) -> None:
    from aimd.models.demo import run_reference_stage
    from aimd.phantoms import generate_dataset

    generate_dataset(tmp_path / "ph", cases=7, seed=5, size=48, sites=2, workers=1)
    result = run_reference_stage(tmp_path / "ph", tmp_path / "out", cases=3, seed=0)
    for name in RECIPES:
        assert result[name]["weights_sha256"] == read_record(name)["weights_sha256"]
        assert result[name]["held_out_sites"] == sorted(HELD_OUT_SITES)
    assert Path(result["device-lesions"]["case"]["mask"]).is_file()
    assert Path(result["device-nodules"]["case"]["detections"]).is_file()
