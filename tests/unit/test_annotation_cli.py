"""CLI: `aimd qc check|agree`, `aimd package export|verify`, `aimd annotation ...`, `aimd data register`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_annotation_builders import clean_package, load, save, simulated_dataset
from typer.testing import CliRunner

from aimd.annotation import default_taxonomy, package_json_schema
from aimd.cli.annotation import annotation_app, package_app, qc_app, register_data_commands
from aimd.cli.common import new_typer
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume

runner = CliRunner()


def _app():  # type: ignore[no-untyped-def]
    app = new_typer("test")
    app.add_typer(qc_app, name="qc")
    app.add_typer(package_app, name="package")
    app.add_typer(annotation_app, name="annotation")
    data = new_typer("data")
    register_data_commands(data)
    app.add_typer(data, name="data")
    return app


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(_app(), [str(a) for a in args])


def test_qc_check_exit_codes_and_json(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    ok = _run("qc", "check", path, "--template", "default", "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["summary"]["errors"] == 0
    data = load(path)
    data["registrations"][0]["error"]["value"] = 4.2
    save(path, data)
    bad = _run("qc", "check", path, "--json")
    assert bad.exit_code == 1
    codes = [f["code"] for f in json.loads(bad.stdout)["packages"][str(path)]["findings"]]
    assert "REGISTRATION_ERROR_HIGH" in codes
    assert _run("qc", "check", path, "--max-registration-error-mm", "5", "--json").exit_code == 0
    human = _run("qc", "check", path)
    assert human.exit_code == 1 and "1 package: 1 error, no warnings" in human.stdout


def test_bad_input_is_an_aimd_error_not_a_crash(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    data = load(path)
    data["annotations"][0]["colour"] = "red"
    save(path, data)
    res = _run("qc", "check", path)
    assert isinstance(res.exception, SchemaError) and res.exception.exit_code == 2
    missing = _run("package", "verify", tmp_path / "nowhere")
    assert isinstance(missing.exception, InvalidInputError) and missing.exception.exit_code == 2


def test_schema_and_taxonomy_commands(tmp_path: Path) -> None:
    res = _run("annotation", "schema")
    assert res.exit_code == 0 and json.loads(res.stdout) == json.loads(json.dumps(package_json_schema()))
    old = tmp_path / "old.json"
    new = tmp_path / "new.json"
    tax = default_taxonomy().model_dump(mode="json", exclude_none=True)
    old.write_text(json.dumps(tax))
    tax["version"] = "1.0.1"
    tax["labels"] = [lb for lb in tax["labels"] if lb["code"] != "PNEUMONIA_GGO"]
    new.write_text(json.dumps(tax))
    diff = _run("annotation", "taxonomy", "diff", old, new, "--json")
    assert diff.exit_code == 1 and json.loads(diff.stdout)["required_bump"] == "major"
    assert _run("annotation", "taxonomy", "validate", new).exit_code == 0
    shown = _run("annotation", "taxonomy", "show", "--json")
    assert json.loads(shown.stdout)["name"] == "aimd-default"
    assert _run("annotation", "template", "show", "--json").exit_code == 0
    assert _run("annotation", "validate", clean_package(tmp_path / "p")).exit_code == 0


def test_export_and_verify_commands(tmp_path: Path) -> None:
    path = clean_package(tmp_path / "src")
    exp = _run("package", "export", path, tmp_path / "out", "--version", "1.0", "--json")
    assert exp.exit_code == 0, exp.output
    assert json.loads(exp.stdout)["files"] > 5
    ver = _run("package", "verify", tmp_path / "out", "--json")
    assert ver.exit_code == 0 and json.loads(ver.stdout)["ok"] is True
    data = load(path)
    data["annotations"][2]["data"]["attributes"]["margin"] = "fuzzy"
    save(path, data)
    refused = _run("package", "export", path, tmp_path / "out", "--version", "1.1", "--json")
    assert refused.exit_code == 1 and json.loads(refused.stdout)["refused"] is True
    forced = _run(
        "package",
        "export",
        path,
        tmp_path / "out",
        "--version",
        "1.1",
        "--force",
        "--reason",
        "margin vocabulary under review",
        "--json",
    )
    assert forced.exit_code == 0 and json.loads(forced.stdout)["forced_reason"] == "margin vocabulary under review"
    (tmp_path / "out" / "v1.1").chmod(0o755)
    (tmp_path / "out" / "v1.1" / "extra.txt").write_text("x")
    tampered = _run("package", "verify", tmp_path / "out", "--version", "1.1", "--json")
    assert tampered.exit_code == 1
    assert {f["code"] for f in json.loads(tampered.stdout)["findings"]} >= {"FILE_EXTRA", "NOT_READ_ONLY"}


def test_agree_and_simulate_commands(tmp_path: Path) -> None:
    dataset = simulated_dataset(tmp_path, readers=2, cases=1, seed=2, size=48)
    sim = _run("annotation", "simulate", dataset, "--readers", "3", "--seed", "1", "--json")
    assert sim.exit_code == 0 and len(json.loads(sim.stdout)["packages"]) == 3
    res = _run(
        "qc", "agree", "--dataset", dataset, "--record", tmp_path / "rec.json", "--html", tmp_path / "r.html", "--json"
    )
    out = json.loads(res.stdout)
    assert res.exit_code == (1 if any(f["severity"] == "error" for f in out["findings"]) else 0)
    assert out["readers"] == ["reader_1", "reader_2", "reader_3"]
    assert json.loads((tmp_path / "rec.json").read_text())["summary"] == out["summary"]
    assert (tmp_path / "r.html").is_file()
    annotations = dataset / "cases" / "case_0001" / "annotations"
    two = _run("qc", "agree", annotations / "reader_1.json", annotations / "reader_3.json", "--json")
    assert json.loads(two.stdout)["readers"] == ["reader_1", "reader_3"]
    assert _run("qc", "agree", annotations / "reader_1.json").exit_code != 0


def test_data_register_command(tmp_path: Path) -> None:
    z, y, x = np.mgrid[:20, :24, :24]
    img = 100.0 * (((x - 11) / 7.0) ** 2 + ((y - 12) / 5.0) ** 2 + ((z - 9) / 6.0) ** 2 <= 1) + 3.0 * x
    write_nifti(Volume(img.astype(np.float32), spacing=(1.0, 1.0, 1.0)), tmp_path / "f.nii.gz")
    write_nifti(Volume(img.astype(np.float32), spacing=(1.0, 1.0, 1.0), origin=(1.5, 0.0, 0.0)), tmp_path / "m.nii.gz")
    pts = [[11.0, 12.0, 9.0], [4.0, 12.0, 9.0], [11.0, 7.0, 9.0]]
    (tmp_path / "lf.json").write_text(json.dumps(pts))
    (tmp_path / "lm.json").write_text(json.dumps([[p[0] + 1.5, p[1], p[2]] for p in pts]))
    res = _run(
        "data",
        "register",
        tmp_path / "f.nii.gz",
        tmp_path / "m.nii.gz",
        tmp_path / "reg",
        "--landmarks-fixed",
        tmp_path / "lf.json",
        "--landmarks-moving",
        tmp_path / "lm.json",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["registration"]["error"]["metric"] == "tre_mm" and out["registration"]["error"]["value"] < 0.5
    assert (tmp_path / "reg" / "transform.tfm").is_file()
    strict = _run(
        "data",
        "register",
        tmp_path / "f.nii.gz",
        tmp_path / "m.nii.gz",
        tmp_path / "reg2",
        "--landmarks-fixed",
        tmp_path / "lf.json",
        "--landmarks-moving",
        tmp_path / "lf.json",
        "--max-error-mm",
        "1.0",
        "--json",
    )
    assert strict.exit_code == 1 and json.loads(strict.stdout)["error_over_limit"] is True
    half = _run(
        "data",
        "register",
        tmp_path / "f.nii.gz",
        tmp_path / "m.nii.gz",
        tmp_path / "reg3",
        "--landmarks-fixed",
        tmp_path / "lf.json",
    )
    assert isinstance(half.exception, InvalidInputError)


@pytest.mark.parametrize("group", [qc_app, package_app, annotation_app])
def test_every_command_has_help_with_an_example(group) -> None:  # type: ignore[no-untyped-def]
    for cmd in group.registered_commands:
        assert cmd.epilog and cmd.epilog.startswith("Example: aimd "), cmd.name
