"""The CLI's contract with scripts: lazy start-up, one exit code per outcome, JSON errors, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from aimd.cli.main import LAZY_COMMANDS, load_command


def _py(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


def _aimd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _py("from aimd.cli.main import run; run()", *args, env=env)


def test_help_and_version_import_no_command_group() -> None:
    code = (
        "import sys\nfrom aimd.cli.main import main\nmain(['--help'])\nmain(['version'])\n"
        "heavy = [m for m in ('torch', 'monai', 'onnxruntime', 'openvino', 'aimd.cli.data') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = _py(code)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    for name in LAZY_COMMANDS:
        assert name in proc.stdout


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_listed_help_is_the_groups_own(name: str) -> None:
    cmd = load_command(name)
    first = (cmd.help or "").strip().splitlines()[0]
    assert LAZY_COMMANDS[name][2] == first


def test_version_flag() -> None:
    proc = _aimd("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("aimd ")


def test_usage_errors_exit_2_and_speak_json() -> None:
    proc = _aimd("data", "phantom", "out", "--cases", "many", "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "BadParameter" and error["where"] == "--cases" and error["exit_code"] == 2
    proc = _aimd("data", "no-such-command", "--json")
    assert proc.returncode == 2 and "no-such-command" in json.loads(proc.stdout)["error"]["message"]
    proc = _aimd("data", "no-such-command")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""


def test_internal_error_exits_3_with_the_traceback_in_a_log(tmp_path: Path) -> None:
    code = (
        "from aimd.cli import main\n"
        "@main.app.command('boom', hidden=True)\n"
        "def boom(json_out: bool = main.typer.Option(False, '--json')) -> None:\n"
        "    raise ZeroDivisionError('division by zero in a helper')\n"
        "main.run()\n"
    )
    for json_mode in (False, True):
        proc = _py(code, "boom", *(["--json"] if json_mode else []), env={"AIMD_LOG_DIR": str(tmp_path)})
        assert proc.returncode == 3, proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        logs = sorted(tmp_path.glob("aimd-error-*.log"))
        assert logs and "ZeroDivisionError" in logs[-1].read_text()
        assert "internal error" in proc.stderr
        if json_mode:
            error = json.loads(proc.stdout)["error"]
            assert error["type"] == "InternalError" and error["exit_code"] == 3 and Path(error["log"]).is_file()
        else:
            assert "full traceback:" in proc.stderr


def test_unwritable_output_is_bad_input(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    target = locked / "file-not-folder"
    target.write_text("x")
    proc = _aimd("data", "phantom", str(target / "out"), "--cases", "1", "--size", "32", "--json")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["error"]["where"]


def test_typer_is_what_the_lazy_loader_builds() -> None:
    assert all(isinstance(load_command(n).name, str) for n in LAZY_COMMANDS)
    assert isinstance(typer.Typer(), typer.Typer)


def test_phantom_force_keeps_a_regular_file(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    proc = _aimd("data", "phantom", str(target), "--cases", "1", "--size", "32", "--force", "--json")
    assert proc.returncode == 2, proc.stderr
    assert "never replaces" in json.loads(proc.stdout)["error"]["message"]
    assert target.read_text() == "keep me"


def test_info_logs_stay_off_stderr_unless_asked(tmp_path: Path) -> None:
    args = ("data", "phantom", str(tmp_path / "a"), "--cases", "1", "--size", "32", "--workers", "1")
    quiet = _aimd(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert "phantom.written" not in quiet.stderr
    assert "{" not in quiet.stdout and "split 1 " in quiet.stdout.replace("\n", " ")  # sentences, never a dict
    log = tmp_path / "logs" / "aimd.jsonl"
    to_file = _aimd(*args[:2], str(tmp_path / "b"), *args[3:], env={"AIMD_LOG_FILE": str(log)})
    assert to_file.returncode == 0 and "phantom.written" not in to_file.stderr
    assert json.loads(log.read_text().splitlines()[-1])["event"] == "phantom.written"
    loud = _aimd(*args[:2], str(tmp_path / "c"), *args[3:], env={"AIMD_LOG_LEVEL": "INFO"})
    assert "phantom.written" in loud.stderr


def test_nan_image_and_single_voxel_registration_are_findings_or_bad_input(tmp_path: Path) -> None:
    import numpy as np

    from aimd.imaging.nifti_io import write_nifti
    from aimd.imaging.volume import Volume

    arr = np.zeros((6, 6, 6), np.float32)
    arr[2, 3, 4] = np.nan
    write_nifti(Volume(arr), tmp_path / "nan.nii.gz")
    write_nifti(Volume(np.ones((1, 1, 1), np.float32)), tmp_path / "one.nii.gz")
    proc = _aimd("data", "validate", str(tmp_path / "nan.nii.gz"), "--json")
    assert proc.returncode == 1, proc.stderr
    codes = [f["code"] for f in json.loads(proc.stdout)["findings"]]
    assert "PIXEL_NOT_FINITE" in codes
    proc = _aimd(
        "data", "register", str(tmp_path / "one.nii.gz"), str(tmp_path / "one.nii.gz"), str(tmp_path / "reg"), "--json"
    )
    assert proc.returncode == 2, proc.stderr
    assert "too small to register" in json.loads(proc.stdout)["error"]["message"]
    assert not (tmp_path / "reg").exists()


def test_tables_fit_80_columns_without_cutting_text() -> None:
    proc = _aimd("model", "zoo", env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines and max(len(line) for line in lines) <= 80
    assert "(nodule_pre" in proc.stdout and "{" not in proc.stdout  # long text wraps, never cut
