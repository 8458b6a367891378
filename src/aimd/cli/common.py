"""Shared CLI plumbing: JSON/human output, exit codes, progress bars.

Exit codes: 0 ok, 1 checks found errors, 2 bad input or usage, 3 internal error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from aimd.core.findings import Finding, Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

console = Console()
err_console = Console(stderr=True)

T = TypeVar("T")

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
RayOption = typer.Option(False, "--ray", help="Run each case as a Ray task on a local Ray instance.")
RayAddressOption = typer.Option(
    None,
    "--ray-address",
    metavar="ADDRESS",
    help="Run each case as a Ray task on the cluster at ADDRESS (implies --ray).",
)


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


def live_progress(enabled: bool = True) -> bool:
    """Whether to draw progress: not under ``--json`` and only when stderr is a terminal."""
    return enabled and err_console.is_terminal


class Advance:
    """What :func:`progress_bar` yields: ``advance(n=1)`` moves the bar, ``advance.describe(text)``
    changes the line's text (the step now running)."""

    def __init__(self, progress: Progress | None = None, task: Any = None) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)


@contextmanager
def progress_bar(description: str, total: int | None, *, enabled: bool = True) -> Iterator[Advance]:
    """A Rich progress line on stderr; yields an :class:`Advance`.

    Nothing is drawn under ``--json`` (``enabled=False``) or when stderr is not a terminal, so
    pipes and log files stay clean.
    """
    if not live_progress(enabled):
        yield Advance()
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        yield Advance(progress, progress.add_task(description, total=total))


@contextmanager
def status(message: str, *, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A one-line spinner on stderr while a step of unknown length runs (loading a model, predicting).

    Yields ``update(text)``. Quiet under ``--json`` and when stderr is not a terminal.

    Example
    -------
    >>> with status("loading model", enabled=False) as update:
    ...     update("predicting")
    """
    if not live_progress(enabled):
        yield lambda _text: None
        return
    with err_console.status(message) as live:
        yield lambda text: live.update(text)


def track(items: Iterable[T], description: str, total: int | None = None, *, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` with a progress bar."""
    with progress_bar(description, total, enabled=enabled) as advance:
        for item in items:
            yield item
            advance()


def plural(n: int, word: str) -> str:
    """``"1 error"``, ``"2 errors"``, ``"no warnings"``.

    Example
    -------
    >>> plural(2, "info finding"), plural(1, "error"), plural(0, "warning")
    ('2 info findings', '1 error', 'no warnings')
    """
    return f"{n or 'no'} {word}{'' if n == 1 else 's'}"


def findings_sentence(findings: list[Finding]) -> str:
    """``"1 error, no warnings, 2 info findings"`` — every severity counted, infos included."""
    n = {sev: sum(f.severity is sev for f in findings) for sev in Severity}
    return ", ".join(
        (
            plural(n[Severity.ERROR], "error"),
            plural(n[Severity.WARNING], "warning"),
            plural(n[Severity.INFO], "info finding"),
        )
    )


def render_findings(findings: list[Finding], title: str, *, show_info: bool = True) -> None:
    """Print findings as a table that fits an 80-column terminal, then a count of each severity.

    Long text wraps inside its cell (never cut with "…"); where and how to fix go under the message.
    With ``show_info=False`` info findings are counted but not listed.
    """
    from rich.markup import escape
    from rich.table import Table

    shown = [f for f in findings if show_info or f.severity is not Severity.INFO]
    summary = findings_sentence(findings)
    if not findings:
        console.print(f"[green]{escape(title)}: no findings[/green]")
        return
    if shown:
        table = Table(title=title, expand=False, show_lines=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("code / clause", overflow="fold", max_width=26)
        table.add_column("finding", overflow="fold")
        colour = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
        for f in shown:
            loc = ", ".join(f"{k}={v}" for k, v in f.location.items())
            text = escape(f.message)
            if loc:
                text += f"\n[dim]at {escape(loc)}[/dim]"
            if f.hint:
                text += f"\n[dim]fix: {escape(f.hint)}[/dim]"
            table.add_row(f"[{colour[f.severity]}]{f.severity.value}[/]", f"{escape(f.code)}\n{escape(f.clause)}", text)
        console.print(table)
    console.print(f"{escape(title)}: {summary}", highlight=False)


__all__ = [
    "Advance",
    "EXIT_BAD_INPUT",
    "EXIT_FINDINGS",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "JsonOption",
    "console",
    "err_console",
    "findings_sentence",
    "new_typer",
    "plural",
    "print_json",
    "live_progress",
    "progress_bar",
    "status",
    "render_findings",
    "track",
]
