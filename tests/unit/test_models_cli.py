"""``aimd model`` commands: zoo, train, export, describe, predict; JSON output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aimd.cli.model import app
from aimd.core.errors import InvalidInputError
from aimd.phantoms import generate_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models_cli") / "ph"
    generate_dataset(out, cases=7, seed=5, size=32, sites=1, workers=1)
    return out


def test_every_command_has_help_with_an_example() -> None:
    group = typer.main.get_command(app)
    for name in ("zoo", "train", "export", "describe", "predict"):
        result = runner.invoke(app, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example:" in (group.commands[name].epilog or "")  # type: ignore[attr-defined]
        assert "--json" in result.output


def test_zoo_json_lists_the_four_models_and_the_reference_devices() -> None:
    result = runner.invoke(app, ["zoo", "--json"])
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"unet-b1", "unet-small", "vit-small", "vit-b16-512", "device-lesions", "device-nodules"}
    assert rows["vit-b16-512"]["input"] == [-1, 1, 512, 512]


def test_train_describe_predict_through_the_cli(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        [
            "train",
            "--task",
            "cls",
            "--model",
            "vit-small",
            "--data",
            str(dataset),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--max-steps",
            "2",
            "--batch-size",
            "4",
            "--threads",
            "1",
            "--augment",
            "",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == "vit-small" and summary["epochs_run"] == 1 and summary["metric"] == "auc"
    result = runner.invoke(
        app,
        [
            "export",
            str(run),
            "--exporter",
            "torchscript",
            "--int8",
            "--int8-mode",
            "dynamic",
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["onnx_check_passed"] is True and report["onnx_max_abs_diff"] < 1e-4
    assert {"torch_fp32", "onnx_fp32", "onnx_int8_dynamic", "openvino_fp32"} <= set(report["runtimes"])
    assert report["openvino_max_abs_diff"] < 1e-4
    scored = {k for k in report["runtimes"] if k.startswith("openvino")} | set(report.get("unsupported", {}))
    assert scored == {"openvino_fp32", "openvino_int8_dynamic"}  # each file scored in OpenVINO or said why not
    result = runner.invoke(app, ["export", str(run), "--runtime", "tensorrt", "--json"])
    assert isinstance(result.exception, InvalidInputError) and "unknown runtime" in str(result.exception)
    assert (run / "export" / "model.int8.dynamic.onnx").is_file()
    out = tmp_path / "d.html"
    result = runner.invoke(app, ["describe", str(run), "--format", "html", "--out", str(out), "--no-measure", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert info["parameters"] == json.loads((run / "run.json").read_text())["parameters"]
    strict = runner.invoke(app, ["describe", str(run), "--no-measure", "--strict", "--json"])
    assert strict.exit_code == 1 and json.loads(strict.stdout)["required_gaps"] > 0
    dx = dataset / "cases" / "case_0001" / "dx.dcm"
    result = runner.invoke(app, ["predict", str(run), str(dx), "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    score = json.loads(result.stdout)["scores"][0]
    assert 0.0 <= score <= 1.0
    ct = dataset / "cases" / "case_0001" / "ct.nii.gz"
    result = runner.invoke(app, ["predict", str(run), str(ct), "--json"])
    assert isinstance(result.exception, InvalidInputError)
    assert "carries no modality" in str(result.exception)
    result = runner.invoke(app, ["predict", str(run), str(ct), "--modality", "CT", "--json"])
    assert "model expects DX images, got CT" in str(result.exception)


def test_bad_input_exits_2_without_traceback(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom aimd.cli import main\nfrom aimd.cli.model import app\n"
        "main.app.add_typer(app, name='model')\nsys.argv = ['aimd', *sys.argv[1:]]\nmain.run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "model", "export", str(tmp_path / "no-run"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    payload = json.loads(proc.stdout)["error"]
    assert payload["type"] == "InvalidInputError" and payload["where"].endswith("no-run")
    result = runner.invoke(app, ["train", "--task", "det", "--model", "unet-small", "--data", "x", "--out", "y"])
    assert isinstance(result.exception, InvalidInputError)
