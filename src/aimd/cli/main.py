"""The ``aimd`` command: one Typer app, one module per command group.

Command groups are imported only when they run, so ``aimd --help`` and ``aimd version`` start
without loading PyTorch, MONAI or ONNX Runtime. Exit codes: 0 ok, 1 findings, 2 bad input or usage,
3 an internal error (the short message names the file holding the full traceback), 130 interrupted.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # Typer 0.2x ships its own copy of Click; its exceptions are the ones raised
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older Typer on top of Click
    from click import exceptions as click_exc  # type: ignore[no-redef]

from aimd import __version__
from aimd.cli.common import EXIT_BAD_INPUT, EXIT_INTERNAL, err_console, print_json

#: name → (module, attribute, one-line help). The attribute is a Typer app (a group) or a function
#: (a single command). The help line is the first line of the group's own help (a test keeps them equal).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "data": (
        "aimd.cli.data",
        "app",
        "Imaging data: inspect, validate geometry, convert, generate phantoms, de-identify.",
    ),
    "metrics": (
        "aimd.cli.metrics",
        "app",
        "Metrics: segmentation, detection, classification and rater agreement (000 A.10, 001 §9 / App. D).",
    ),
    "model": (
        "aimd.cli.model",
        "app",
        "Models: reference zoo, training and fine-tuning (full, LoRA, distillation), ONNX/INT8 export, "
        "000 §4 model description, prediction.",
    ),
    "evaluate": (
        "aimd.cli.evaluate",
        "app",
        "Evaluate a pre-trained model against the provider's claims and write the conformity report "
        "(000 §6.2–§6.3.9): report.json, report.html, report.pdf.",
    ),
    "annotation": (
        "aimd.cli.annotation",
        "annotation_app",
        "Annotation package schema, taxonomy, templates and simulated readers (001 §8.2, App. C).",
    ),
    "qc": ("aimd.cli.annotation", "qc_app", "Automatic QC and reader agreement (001 §6.5, §8.4, §9)."),
    "package": (
        "aimd.cli.annotation",
        "package_app",
        "Export frozen, hashed annotation versions and verify them (001 §6.6, §10.1.5, §10.2.4).",
    ),
    "iq": (
        "aimd.cli.iq",
        "app",
        "Installation qualification (002): protocol template, signed release bundles, offline install with "
        "automatic rollback, one-command rollback, the IQ run and its report.",
    ),
    "audit": ("aimd.cli.audit", "app", "Audit trails."),
    "platform": ("aimd.cli.platform", "app", "The annotation platform server (001 §6, §9–§11)."),
    "serve": ("aimd.cli.serve", "app", "Run the inference service (KServe v2 API, PACS loop, explanations, audit)."),
    "demo": ("aimd.cli.demo", "demo", "Run the whole path on embedded defaults."),
}

_EPILOGS = {"demo": "Example: aimd demo --out aimd-demo --cases 20"}


def load_command(name: str) -> Any:
    """Import the module of command ``name`` and build its click command."""
    module, attr, _ = LAZY_COMMANDS[name]
    obj = getattr(importlib.import_module(module), attr)
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    if isinstance(obj, typer.Typer):
        holder.add_typer(obj, name=name)  # a group stays a group even when it holds one command
    else:
        holder.command(name, epilog=_EPILOGS.get(name))(obj)
    holder.command("_", hidden=True)(lambda: None)  # two entries: Typer builds a group, not a lone command
    cmd = typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    return cmd


class LazyGroup(TyperGroup):
    """A Typer group whose sub-commands are imported on first use (listing them imports nothing)."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None or cmd_name not in LAZY_COMMANDS:
            return cmd
        if self._listing:
            return TyperCommand(name=cmd_name, help=LAZY_COMMANDS[cmd_name][2], callback=None)
        cmd = load_command(cmd_name)
        self.add_command(cmd, cmd_name)
        return cmd

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


def _version_callback(value: bool) -> None:
    if value:
        print(f"aimd {__version__}")
        raise typer.Exit()


app = typer.Typer(
    cls=LazyGroup,
    help="aimd — quality toolkit for AI medical imaging devices.\n\nExample: aimd data phantom out/ --cases 5 --seed 1",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    show_version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the aimd version and exit."
    ),
) -> None:
    """aimd — quality toolkit for AI medical imaging devices."""
    from aimd.core.config import get_settings
    from aimd.core.logging import configure_logging

    settings = get_settings()  # a missing AIMD_CONFIG file or an invalid setting is bad input (exit 2) first
    if settings.log_file is not None:
        configure_logging(settings.log_level, settings.log_json, file=settings.log_file)
    elif "AIMD_LOG_LEVEL" not in os.environ:  # stderr carries progress bars: only warnings unless asked
        configure_logging("WARNING", settings.log_json)
    else:
        configure_logging(settings.log_level, settings.log_json)


@app.command("version", epilog="Example: aimd version --json")
def version(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the aimd version."""
    if json_out:
        print(json.dumps({"aimd": __version__}))
    else:
        print(f"aimd {__version__}")


def error_payload(
    kind: str, message: str, *, where: str | None = None, hint: str | None = None, exit_code: int, **extra: Any
) -> dict[str, Any]:
    """The ``{"error": {...}}`` object printed on stdout with ``--json`` when a command fails."""
    return {"error": {"type": kind, "message": message, "where": where, "hint": hint, "exit_code": exit_code, **extra}}


def _fail(json_mode: bool, payload: dict[str, Any], text: str) -> None:
    if json_mode:
        print_json(payload)
    from rich.markup import escape

    err_console.print(f"[red]error:[/red] {escape(text)}", highlight=False)


def crash_log_dir() -> Path:
    """Where internal-error tracebacks go: ``$AIMD_LOG_DIR`` or ``<cache>/aimd/logs``."""
    base = os.environ.get("AIMD_LOG_DIR")
    if base:
        return Path(base)
    cache = os.environ.get("AIMD_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / ("logs" if os.environ.get("AIMD_CACHE_DIR") else "aimd/logs")


def _log_traceback(err: BaseException) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    text = f"aimd {__version__} internal error at {stamp}\nargv: {sys.argv!r}\n\n" + "".join(
        traceback.format_exception(err)
    )
    for folder in (crash_log_dir(), Path(os.environ.get("TMPDIR", "/tmp"))):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"aimd-error-{stamp}-{os.getpid()}.log"
            path.write_text(text, encoding="utf-8")
            return str(path)
        except OSError:
            continue
    return "(could not write a log file)"


def _usage_error(err: click_exc.ClickException) -> dict[str, Any]:
    where = None
    if isinstance(err, click_exc.BadParameter) and err.param is not None:
        where = "/".join(getattr(err.param, "opts", []) or [str(err.param.name)])
    ctx = getattr(err, "ctx", None)
    command = ctx.command_path if ctx is not None else "aimd"
    return error_payload(
        type(err).__name__, err.format_message(), where=where, hint=f"see `{command} --help`", exit_code=err.exit_code
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return its exit code; nothing escapes as a traceback."""
    from aimd.core.errors import AimdError

    args = sys.argv[1:] if argv is None else list(argv)
    json_mode = "--json" in args
    try:
        if not json_mode:
            app(args=args, prog_name="aimd")
            return 0
        rv = app(args=args, prog_name="aimd", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except SystemExit as err:
        code = err.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except click_exc.NoArgsIsHelpError as err:
        print(err.ctx.get_help() if err.ctx else "")
        return EXIT_BAD_INPUT
    except click_exc.ClickException as err:
        _fail(True, _usage_error(err), err.format_message())
        return err.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except AimdError as err:
        payload = error_payload(
            type(err).__name__, err.message, where=err.where, hint=err.hint, exit_code=err.exit_code
        )
        _fail(json_mode, payload, str(err))
        return err.exit_code
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError) as err:
        where = getattr(err, "filename", None)
        reason = err.strerror or str(err)
        hint = {
            "PermissionError": "choose a folder you may write to, or fix its permissions",
            "FileNotFoundError": "check the path",
            "FileExistsError": "choose a new path or pass --force where the command offers it",
        }.get(type(err).__name__, "check the path")
        payload = error_payload(type(err).__name__, reason, where=where, hint=hint, exit_code=EXIT_BAD_INPUT)
        _fail(json_mode, payload, f"{where}: {reason} (fix: {hint})" if where else f"{reason} (fix: {hint})")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as err:  # an aimd bug, not the user's data: exit 3 with the traceback in a file
        log = _log_traceback(err)
        message = f"internal error: {type(err).__name__}: {err}"[:300]
        payload = error_payload(
            "InternalError",
            message,
            where=log,
            hint="this is a bug in aimd; please report it with the log file",
            exit_code=EXIT_INTERNAL,
            log=log,
        )
        _fail(json_mode, payload, f"{message}\nfull traceback: {log}")
        return EXIT_INTERNAL


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
