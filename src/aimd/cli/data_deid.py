"""``aimd data deid``: de-identify DICOM, report text and JSON (001 §7.3, §11.2; 003 §2.2.3)."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import EXIT_OK, JsonOption, console, err_console, print_json, progress_bar
from aimd.imaging import deid as deid_lib

_EXAMPLE = "Example: aimd data deid phantoms/ deid/ --map secure/deid_map.json --json"


def deid(
    src: Path = typer.Argument(..., help="A DICOM/text/JSON file, a case folder or a dataset folder."),
    dst: Path = typer.Argument(..., help="Output folder (same structure); new or empty unless --force."),
    map_path: Path = typer.Option(..., "--map", help="Pseudonym map file (outside DST; reused if present)."),
    salt: str | None = typer.Option(
        None, "--salt", envvar="AIMD_DEID_SALT", help="Secret for a new map (default: random); must match an old map."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty DST."),
    keep_private_tags: bool | None = typer.Option(
        None,
        "--keep-private-tags/--remove-private-tags",
        help="Keep DICOM private attributes unchecked (default: settings.deid.keep_private_tags, normally remove).",
    ),
    clean_descriptors: bool = typer.Option(
        False, "--clean-descriptors", help="Keep study/series descriptions, cleaned (113105)."
    ),
    remove_dates: bool = typer.Option(
        False, "--remove-dates", help="Remove dates instead of shifting them (no 113107)."
    ),
    remove_characteristics: bool = typer.Option(
        False, "--remove-characteristics", help="Remove sex/age/size/weight too (no 113108)."
    ),
    copy_unknown: bool = typer.Option(
        False, "--copy-unknown", help="Copy files of unknown format unchecked (default: leave out)."
    ),
    clean_pixels: bool = typer.Option(
        False,
        "--clean-pixels",
        help="Blank burned-in text (deid recipes + Tesseract OCR) instead of "
        "quarantining; images where OCR still finds text stay out.",
    ),
    json_out: bool = JsonOption,
) -> None:
    """De-identify SRC into DST: DICOM by the PS3.15 Basic Profile, text and JSON by aimd's text rules.

    Pseudonyms, UIDs and per-patient date shifts come from MAP (keyed by its secret salt).

    Re-running with the same map gives the same output; keep MAP apart from DST (001 §11.2.1).

    DST/deid_log.json records the rules, options, tool versions and per-file results.

    Images that may hold burned-in text (BurnedInAnnotation YES; US, SC, XA, OT ...) are quarantined:
    left out and listed with the reason, unless --clean-pixels cleans them.

    Exit 1 when any file was left out (not handled, quarantined, skipped, or removed by the residual
    scan), with the count; 2 for bad input.
    """
    src_r, _, map_r = deid_lib.check_paths(src, dst, map_path)
    total = len(deid_lib.discover(src_r, exclude=(map_r,))[1])
    options = deid_lib.DeidOptions.from_settings(
        keep_private_tags=keep_private_tags,
        clean_descriptors=clean_descriptors,
        remove_dates=remove_dates,
        remove_characteristics=remove_characteristics,
        copy_unknown=copy_unknown,
        clean_pixels=clean_pixels,
    )
    with progress_bar("de-identifying", total, enabled=not json_out) as advance:
        report = deid_lib.deidentify_path(
            src, dst, map_path, options=options, salt=salt, overwrite=force, progress=advance
        )
    summary = report.summary()
    for item in summary["left_out"]:
        err_console.print(f"[red]{item['status']}:[/red] {item['path']}: {item['reason']}", highlight=False)
    for item in summary["warning_list"]:
        err_console.print(f"[yellow]warning:[/yellow] {item['path']}: {item['warning']}", highlight=False)
    if json_out:
        print_json(summary)
    else:
        statuses = ", ".join(f"{k} {v}" for k, v in summary["by_status"].items())
        residual = report.log["residual_scan"]
        console.print(
            f"[green]de-identified[/green] {summary['files']} files → {report.dst} ({statuses}); "
            f"{summary['patients']} patients; residual scan: {residual['files_with_hits']} hits in "
            f"{residual['files_scanned']} files; span overlaps {summary['span_overlaps']}",
            highlight=False,
        )
        console.print(f"map: {report.map_path}   log: {summary['log']}", highlight=False)
        if summary["warning_list"]:
            console.print(f"{len(summary['warning_list'])} warnings (listed above)", highlight=False)
    if report.exit_code != EXIT_OK:
        err_console.print(
            f"[red]{len(summary['left_out'])} of {summary['files']} files left out of {report.dst} "
            "(needs review; see above and the log)[/red]",
            highlight=False,
        )
        raise typer.Exit(report.exit_code)


def register(app: typer.Typer) -> None:
    """Add ``deid`` to the ``aimd data`` group."""
    app.command("deid", epilog=_EXAMPLE)(deid)


__all__ = ["deid", "register"]
