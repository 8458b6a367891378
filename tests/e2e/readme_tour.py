"""Read the command blocks of README.md's "CLI tour" and run them as a user would (shared by the e2e tests)."""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
EXIT_MARK = re.compile(r"→ exit (\d)")


@dataclass(frozen=True)
class Step:
    """One command of the tour: its text, the comment after it and the exit code the README states."""

    command: str
    comment: str
    expected_exit: int


def _split_comment(line: str) -> tuple[str, str]:
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"" and quote in (None, ch):
            quote = None if quote else ch
        elif ch == "#" and quote is None and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1 :].strip()
    return line.rstrip(), ""


def tour_blocks(readme: Path = README) -> list[list[Step]]:
    """The ```bash blocks between "## CLI tour" and the next section, as lists of steps."""
    text = readme.read_text(encoding="utf-8")
    section = text[text.index("## CLI tour") :]
    section = section[: section.index("\n## ", 5)] if "\n## " in section[5:] else section
    blocks = []
    for body in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        steps: list[Step] = []
        pending = ""
        comments: list[str] = []
        for raw in body.splitlines():
            if not raw.strip():
                continue
            code, comment = _split_comment(raw)
            comments.append(comment)
            if code.endswith("\\"):
                pending += code[:-1].rstrip() + " "
                continue
            command = (pending + code.strip()).strip()
            pending = ""
            note = " ".join(c for c in comments if c)
            comments = []
            found = EXIT_MARK.search(note)
            steps.append(Step(command, note, int(found.group(1)) if found else 0))
        blocks.append(steps)
    return blocks


def aimd_wrapper(folder: Path) -> Path:
    """A ``bin/`` holding an ``aimd`` script that runs this checkout's CLI with this interpreter."""
    bindir = folder / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / "aimd"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -c "from aimd.cli.main import run; run()" "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return bindir


def run_step(command: str, cwd: Path, bindir: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run one tour command with bash in ``cwd`` (``aimd`` resolved to this checkout)."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {
        **os.environ,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "COLUMNS": "80",
    }
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
