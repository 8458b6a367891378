"""CLI conventions: every command has --help with an example and --json; bad input exits 2 cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from aimd.cli.main import app

runner = CliRunner()


def _leaf_commands() -> list[tuple[list[str], Any]]:
    root = typer.main.get_command(app)
    leaves: list[tuple[list[str], Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), [*path, name])
        else:
            leaves.append((path, cmd))

    walk(root, [])
    return leaves


LEAVES = _leaf_commands()


def test_expected_commands_exist() -> None:
    names = {" ".join(p) for p, _ in LEAVES}
    for expected in ("data inspect", "data validate", "data convert", "data phantom", "data deid", "demo"):
        assert expected in names


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=[" ".join(p) for p, _ in LEAVES])
def test_help_has_example(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "aimd " in result.output


@pytest.mark.parametrize("path", [p for p, c in LEAVES if p != ["demo"]], ids=lambda p: " ".join(p))
def test_has_json_option(path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in LEAVES)[tuple(path)]
    opts = {o for param in cmd.params for o in getattr(param, "opts", [])}
    assert "--json" in opts


def _aimd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aimd.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_missing_path_exits_2_without_traceback(tmp_path: Path) -> None:
    proc = _aimd("data", "inspect", str(tmp_path / "nope"), "--json")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "nope" in proc.stderr


def test_bad_setting_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMD_GEOMETRY__GAP_FACTOR", "zero")
    (tmp_path / "x.dcm").write_bytes(b"not dicom")
    proc = _aimd("data", "validate", str(tmp_path), "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "gap_factor" in proc.stderr


def test_missing_config_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMD_CONFIG", str(tmp_path / "missing.toml"))
    proc = _aimd("version", "--json")
    assert proc.returncode == 2, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "ConfigError" and error["where"].endswith("missing.toml")
    (tmp_path / "missing.toml").write_text("seed = 3\n")
    assert _aimd("version").returncode == 0


def test_version_json() -> None:
    proc = _aimd("version", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["aimd"]
