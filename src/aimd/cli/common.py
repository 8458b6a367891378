"""Shared CLI plumbing: JSON/human output, exit codes, progress bars.

Exit codes: 0 ok, 1 checks found errors, 2 bad input or usage, 3 internal error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from aimd.core.findings import Finding, Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (UTF-8, non-ASCII kept)."""
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def new_typer(help_text: str) -> typer.Typer:
    """A Typer group with aimd's defaults (no pretty tracebacks, short help flag)."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Any]:
    """A Rich progress bar on stderr; yields a callable ``advance(n=1)``."""
    if not enabled:
        yield lambda n=1: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def track(items: Iterable[T], description: str, total: int | None = None, *, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` with a progress bar."""
    with progress_bar(description, total, enabled=enabled) as advance:
        for item in items:
            yield item
            advance()


def render_findings(findings: list[Finding], title: str) -> None:
    """Print findings as a Rich table on stdout."""
    from rich.table import Table

    if not findings:
        console.print(f"[green]{title}: no findings[/green]")
        return
    table = Table(title=title)
    for col in ("severity", "code", "clause", "location", "message", "hint"):
        table.add_column(col)
    colour = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
    for f in findings:
        loc = ", ".join(f"{k}={v}" for k, v in f.location.items())
        table.add_row(f"[{colour[f.severity]}]{f.severity.value}[/]", f.code, f.clause, loc, f.message, f.hint)
    console.print(table)


__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "JsonOption",
    "console",
    "err_console",
    "new_typer",
    "print_json",
    "progress_bar",
    "render_findings",
    "track",
]
