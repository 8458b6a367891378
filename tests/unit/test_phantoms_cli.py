"""``aimd data phantom``: JSON summary, progress on stderr, exit 2 on bad arguments without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _aimd(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "aimd.cli.main", "data", "phantom", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_writes_dataset_and_json_summary(tmp_path: Path) -> None:
    proc = _aimd(str(tmp_path / "out"), "--cases", "2", "--seed", "5", "--size", "32", "--sites", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    index = json.loads((tmp_path / "out" / "dataset.json").read_text(encoding="utf-8"))
    assert summary["cases"] == 2 and summary["size"] == 32
    assert summary["files"] == 1 + sum(len(c["files"]) for c in index["cases"])
    assert sum(summary["splits"].values()) == 2


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--cases", "0"], "cases"),
        (["--size", "16"], "size"),
        (["--sites", "9"], "sites"),
        (["--workers", "0"], "workers"),
    ],
)
def test_bad_arguments_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    proc = _aimd(str(tmp_path / "out"), *args, "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    assert needle in json.loads(proc.stdout)["error"]["message"]
    assert not (tmp_path / "out").exists()


def test_non_empty_output_exit_2_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "x.txt").write_text("x")
    proc = _aimd(str(out), "--cases", "1", "--size", "32")
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    proc = _aimd(str(out), "--cases", "1", "--size", "32", "--force")
    assert proc.returncode == 0, proc.stderr
    assert (out / "dataset.json").exists() and not (out / "x.txt").exists()
