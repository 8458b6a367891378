"""MkDocs hook: fills the CLI and settings reference pages from the code when the site is built."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

CLI_MARK = "<!-- aimd:cli-reference -->"
SETTINGS_MARK = "<!-- aimd:settings-reference -->"


def _commands() -> list[list[str]]:
    from typer.main import get_command

    from aimd.cli.main import app

    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if getattr(cmd, "hidden", False):
            return
        out.append(path)
        if hasattr(cmd, "commands"):
            for name in cmd.list_commands(None):
                walk(cmd.get_command(None, name), [*path, name])

    walk(get_command(app), [])
    return out


def cli_reference() -> str:
    """Every command's ``--help`` as text, one section per command."""
    from typer.testing import CliRunner

    from aimd.cli.main import app

    runner = CliRunner()
    parts = []
    for path in _commands():
        result = runner.invoke(app, [*path, "--help"], terminal_width=100, env={"NO_COLOR": "1"})
        title = " ".join(["aimd", *path])
        level = "#" * min(2 + len(path), 4)
        parts.append(f"{level} `{title}`\n\n```text\n{result.output.strip()}\n```\n")
    return "\n".join(parts)


def settings_reference() -> str:
    """A table of every setting: environment name, type, default and description."""
    from pydantic import BaseModel

    from aimd.core.config import Settings

    rows = ["| environment variable | type | default | description |", "|---|---|---|---|"]

    def add(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                add(ann, f"{prefix}{name.upper()}__")
                continue
            kind = getattr(ann, "__name__", str(ann)).replace("|", "\\|")
            default = repr(field.default).replace("|", "\\|")
            rows.append(f"| `{prefix}{name.upper()}` | {kind} | `{default}` | {field.description or ''} |")

    add(Settings, "AIMD_")
    return "\n".join(rows) + "\n"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the reference marks with generated text."""
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if SETTINGS_MARK in markdown:
        markdown = markdown.replace(SETTINGS_MARK, settings_reference())
    return markdown
