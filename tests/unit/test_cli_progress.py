"""Progress lines: drawn on stderr on a terminal while a model loads or a long step runs; nothing
under ``--json`` or when stderr is a pipe or a file."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from aimd.cli import common


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buffer = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=buffer, force_terminal=True, width=80))
    return buffer


def test_status_line_on_a_terminal_names_each_step(terminal: io.StringIO) -> None:
    with common.status("loading model run1"):
        pass
    assert "loading model run1" in terminal.getvalue()
    with common.status("loading model run1") as update:
        update("predicting ct.nii.gz")
    assert "predicting ct.nii.gz" in terminal.getvalue()


def test_progress_bar_describes_the_running_step(terminal: io.StringIO) -> None:
    with common.progress_bar("evaluating", total=3) as advance:
        advance.describe("evaluating robustness (2/3)")
        advance()
    assert "evaluating robustness (2/3)" in terminal.getvalue()


@pytest.mark.parametrize("enabled", [False, True])
def test_nothing_drawn_under_json_or_off_a_terminal(monkeypatch: pytest.MonkeyPatch, enabled: bool) -> None:
    buffer = io.StringIO()  # not a terminal
    console = Console(file=buffer, force_terminal=True if not enabled else None, width=80)
    monkeypatch.setattr(common, "err_console", console)
    with common.status("loading model", enabled=enabled) as update, common.progress_bar("x", 2, enabled=enabled) as a:
        update("predicting")
        a.describe("step")
        a()
    assert buffer.getvalue() == ""


def test_model_loading_shows_a_status_line_except_under_json(
    terminal: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    from aimd.cli.main import main

    argv = ["model", "predict", "no-such-model.onnx", "ct.nii.gz"]
    assert main(argv) == 2
    assert "loading model no-such-model.onnx" in terminal.getvalue()
    terminal.seek(0)
    terminal.truncate()
    assert main([*argv, "--json"]) == 2
    assert "loading model" not in terminal.getvalue() and capsys.readouterr().out.lstrip().startswith("{")
