"""Every example shown in ``--help`` is a valid command line: the command exists and its arguments
and options parse (types, required values, choices), so a user who copies it gets past the parser.

The tour in README.md runs its commands for real (tests/e2e/test_readme_tour.py).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
from typer.main import get_command

from aimd.cli.main import app

EXAMPLE = re.compile(r"(?:^|[:.]\s+)(aimd\s+[a-z][^\n]+)", re.M)


def _walk(cmd: Any, path: list[str], out: list[tuple[list[str], Any]]) -> None:
    out.append((path, cmd))
    if hasattr(cmd, "commands"):
        for name in cmd.list_commands(None):
            _walk(cmd.get_command(None, name), [*path, name], out)


def _examples() -> list[tuple[str, str]]:
    commands: list[tuple[list[str], Any]] = []
    _walk(get_command(app), [], commands)
    found = []
    for path, cmd in commands:
        for text in (cmd.help or "", cmd.epilog or ""):
            for match in EXAMPLE.finditer(text):
                line = re.split(r"\s{2,}\(|\s+#", match.group(1))[0].strip()
                found.append((" ".join(path) or "aimd", line))
    return found


EXAMPLES = _examples()


def test_every_command_group_shows_an_example() -> None:
    assert len(EXAMPLES) >= 40
    assert {where.split()[0] for where, _ in EXAMPLES} >= {"data", "model", "evaluate", "qc", "package", "metrics"}


@pytest.mark.parametrize(("where", "example"), EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_help_example_parses(where: str, example: str) -> None:
    words = shlex.split(re.split(r" (?:>|\||&&) ", example)[0])
    assert words[0] == "aimd"
    cmd: Any = get_command(app)
    args = words[1:]
    path = []
    while hasattr(cmd, "commands") and args and not args[0].startswith("-"):
        sub = cmd.get_command(None, args[0])
        if sub is None:
            break
        path.append(args.pop(0))
        cmd = sub
    runs_itself = getattr(cmd, "invoke_without_command", False)
    assert not hasattr(cmd, "commands") or runs_itself, f"{example!r} (from `{where} --help`) names no command"
    ctx = cmd.make_context(" ".join(["aimd", *path]), list(args))
    assert ctx.command is cmd
