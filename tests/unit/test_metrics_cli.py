"""``aimd metrics seg | det | cls | agree`` end to end on real files."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, roc_auc_score
from typer.testing import CliRunner

from aimd.cli import main as cli_main
from aimd.cli.common import new_typer
from aimd.cli.metrics import app
from aimd.core.errors import GeometryError, InvalidInputError, SchemaError
from aimd.metrics import segmentation_metrics

runner = CliRunner()
SPACING_XYZ = (0.8, 0.6, 2.5)


def _nifti(
    path: Path,
    zyx: np.ndarray,
    spacing_xyz: tuple[float, float, float] = SPACING_XYZ,
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Path:
    affine = np.diag([*spacing_xyz, 1.0])
    affine[:3, 3] = origin
    xyz = np.ascontiguousarray(zyx.transpose(2, 1, 0))  # NIfTI arrays are (x, y, z)
    nib.save(nib.Nifti1Image(xyz, affine), path)
    return path


def _masks(shift: int) -> tuple[np.ndarray, np.ndarray]:
    ref = np.zeros((8, 20, 24), np.uint8)
    ref[2:6, 4:12, 5:15] = 1
    ref[1:3, 15:18, 18:22] = 2
    return ref, np.roll(ref, shift, axis=0)


def _invoke(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_seg_single_pair_reports_mm_with_the_header_spacing(tmp_path: Path) -> None:
    ref, pred = _masks(1)  # shifted by one slice: every distance is one z spacing
    out = _invoke("seg", str(_nifti(tmp_path / "r.nii.gz", ref)), str(_nifti(tmp_path / "p.nii.gz", pred)))
    row = out["cases"][0]["labels"]["1"]
    expected = segmentation_metrics(ref, pred, SPACING_XYZ[::-1])[1]
    assert row["dice"] == pytest.approx(expected.dice)
    assert row["hd"] == pytest.approx(2.5) and row["hd95"] == pytest.approx(2.5)
    assert row["volume_ref_ml"] == pytest.approx(4 * 8 * 10 * 0.8 * 0.6 * 2.5 / 1000)
    assert set(row) >= {
        "dice",
        "iou",
        "hd",
        "hd95",
        "assd",
        "precision",
        "recall",
        "pixel_accuracy",
        "conformity",
        "volume_ref_ml",
        "volume_pred_ml",
    }
    assert "HD95" in out["definitions"]["surface"]


def test_seg_folders_in_parallel_with_csv_and_summary(tmp_path: Path) -> None:
    (tmp_path / "ref").mkdir()
    (tmp_path / "pred").mkdir()
    for i in range(3):
        ref, pred = _masks(i)
        _nifti(tmp_path / "ref" / f"case{i}.nii.gz", ref)
        _nifti(tmp_path / "pred" / f"case{i}.nii.gz", pred)
    csv_path = tmp_path / "rows.csv"
    out = _invoke(
        "seg", str(tmp_path / "ref"), str(tmp_path / "pred"), "--labels", "1", "--workers", "2", "--csv", str(csv_path)
    )
    assert [c["case"] for c in out["cases"]] == ["case0", "case1", "case2"]
    s = out["summary"]["1"]["dice"]
    assert s["n"] == 3 and s["ci_low"] <= s["mean"] <= s["ci_high"]
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 3 and float(rows[0]["dice"]) == 1.0


def test_seg_refuses_different_grids_and_unknown_labels(tmp_path: Path) -> None:
    ref, pred = _masks(0)
    r = _nifti(tmp_path / "r.nii.gz", ref)
    p = _nifti(tmp_path / "p.nii.gz", pred, spacing_xyz=(0.8, 0.6, 3.0))
    result = runner.invoke(app, ["seg", str(r), str(p)])
    assert isinstance(result.exception, GeometryError)
    assert "r.nii.gz" in str(result.exception) and "p.nii.gz" in str(result.exception)
    p2 = _nifti(tmp_path / "p2.nii.gz", pred)
    result = runner.invoke(app, ["seg", str(r), str(p2), "--labels", "1,7"])
    assert isinstance(result.exception, InvalidInputError) and "[7]" in str(result.exception)


def test_seg_folders_must_hold_the_same_cases(tmp_path: Path) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    ref, _ = _masks(0)
    _nifti(tmp_path / "a" / "x.nii.gz", ref)
    _nifti(tmp_path / "b" / "y.nii.gz", ref)
    result = runner.invoke(app, ["seg", str(tmp_path / "a"), str(tmp_path / "b")])
    assert isinstance(result.exception, InvalidInputError)
    assert "no prediction for ['x']" in str(result.exception)


def _coco(tmp_path: Path) -> tuple[Path, Path]:
    ref = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "nodule"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 10, 10]},
        ],
    }
    det = [
        {"image_id": 1, "category_id": 1, "bbox": [11, 10, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.8},
    ]
    (tmp_path / "ref.json").write_text(json.dumps(ref))
    (tmp_path / "det.json").write_text(json.dumps(det))
    return tmp_path / "ref.json", tmp_path / "det.json"


def test_det_reports_counts_froc_and_map(tmp_path: Path) -> None:
    ref, det = _coco(tmp_path)
    out = _invoke("det", str(ref), str(det))
    assert (out["counts"]["tp"], out["counts"]["fp"], out["counts"]["fn"]) == (1, 1, 1)
    assert out["counts"]["fps_per_image"] == 0.5
    assert out["average_precision"]["per_class"]["1"]["name"] == "nodule"
    assert out["froc"]["sensitivity_at"]["0.5"] == 0.5
    (tmp_path / "bad.json").write_text("{not json")
    result = runner.invoke(app, ["det", str(ref), str(tmp_path / "bad.json")])
    assert isinstance(result.exception, SchemaError) and "bad.json" in str(result.exception)


def test_cls_and_agree_on_a_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 80)
    df = pd.DataFrame({"truth": y, "prob": y * 0.4 + rng.random(80), "r1": rng.integers(1, 4, 80)})
    df["r2"] = np.where(rng.random(80) < 0.7, df["r1"], rng.integers(1, 4, 80))
    df["r3"] = np.where(rng.random(80) < 0.7, df["r1"], rng.integers(1, 4, 80))
    df["d1"] = rng.normal(10, 2, 80)
    df["d2"] = df["d1"] + rng.normal(0, 0.4, 80)
    table = tmp_path / "t.csv"
    df.to_csv(table, index=False)
    out = _invoke("cls", str(table), "--truth", "truth", "--score", "prob", "--rule", "sensitivity", "--target", "0.9")
    assert out["auc"]["auc"] == pytest.approx(roc_auc_score(y, df["prob"]))
    assert out["operating_point"]["sensitivity"] >= 0.9
    kappa = _invoke("agree", str(table), "--raters", "r1,r2", "--kind", "kappa", "--weights", "linear")
    assert kappa["kappa"] == pytest.approx(cohen_kappa_score(df["r1"], df["r2"], weights="linear"))
    assert kappa["ci"]["ci_low"] <= kappa["kappa"] <= kappa["ci"]["ci_high"]
    assert _invoke("agree", str(table), "--raters", "r1,r2,r3", "--kind", "fleiss")["fleiss_kappa"] > 0.3
    icc = _invoke("agree", str(table), "--raters", "d1,d2", "--kind", "icc")
    assert icc["primary"]["shrout_fleiss"] == "ICC(2,1)" and len(icc["forms"]) == 6
    assert _invoke("agree", str(table), "--raters", "d1,d2", "--kind", "pearson")["r"] > 0.9
    assert "loa_lower" in _invoke("agree", str(table), "--raters", "d1,d2", "--kind", "bland-altman")
    result = runner.invoke(app, ["agree", str(table), "--raters", "r1,r2,r3", "--kind", "kappa"])
    assert isinstance(result.exception, InvalidInputError) and "exactly 2" in str(result.exception)


def test_bad_column_exits_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("truth,prob\n1,0.9\n0,0.2\n")
    root = new_typer("aimd")
    root.add_typer(app, name="metrics")
    monkeypatch.setattr(cli_main, "app", root)
    argv = ["aimd", "metrics", "cls", str(table), "--truth", "label", "--score", "prob"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        cli_main.run()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "'label'" in err and "t.csv" in err and "Traceback" not in err
