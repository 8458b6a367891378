"""The ``aimd`` command: one Typer app, one module per command group."""

from __future__ import annotations

import json
import sys

import typer

from aimd import __version__
from aimd.cli.common import EXIT_BAD_INPUT, err_console, new_typer
from aimd.core.errors import AimdError

app = new_typer(
    "aimd — quality toolkit for AI medical imaging devices.\n\n"
    "Example: aimd data phantom out/ --cases 5 --seed 1"
)


def _register() -> None:
    from aimd.cli import annotation, audit, data, demo, evaluate, iq, metrics, model

    app.add_typer(data.app, name="data")
    app.add_typer(metrics.app, name="metrics")
    app.add_typer(model.app, name="model")
    app.add_typer(evaluate.app, name="evaluate")
    app.add_typer(iq.app, name="iq")
    app.add_typer(annotation.annotation_app, name="annotation")
    app.add_typer(annotation.qc_app, name="qc")
    app.add_typer(annotation.package_app, name="package")
    app.add_typer(audit.app, name="audit")
    app.command("demo", epilog="Example: aimd demo --out aimd-demo --cases 20")(demo.demo)


@app.command("version", epilog="Example: aimd version --json")
def version(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Print the aimd version."""
    if json_out:
        print(json.dumps({"aimd": __version__}))
    else:
        print(f"aimd {__version__}")


_register()


def _bad_input(message: str, payload: dict[str, object]) -> None:
    if "--json" in sys.argv:
        print(json.dumps(payload, ensure_ascii=False))
    err_console.print(f"[red]error:[/red] {message}", highlight=False)


def run() -> None:
    """Console-script entry point: maps bad input to exit code 2 without a traceback."""
    try:
        app()
    except AimdError as err:
        _bad_input(str(err), err.to_dict())
        sys.exit(err.exit_code)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as err:
        where = getattr(err, "filename", None)
        msg = f"{where}: {err.strerror}" if where else str(err)
        _bad_input(msg, {"error": type(err).__name__, "message": err.strerror, "where": where, "hint": None})
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    run()
