"""``aimd data fingerprint``: device-protocol configurations of CT series and their mapping to a reference."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from aimd.cli.common import JsonOption, console, print_json

_EXAMPLE = (
    "Example: aimd data fingerprint sites/ --json\n\n"
    "Save the mapping for aimd model predict --harmonise: aimd data fingerprint sites/ --out fingerprint.json"
)


def fingerprint_cmd(
    folder: Path = typer.Argument(..., help="Folder of DICOM files (searched recursively); CT series are read."),
    reference: str | None = typer.Option(
        None, "--reference", help="Reference configuration, as printed (default: the one with most series)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the table as JSON (for --harmonise)."),
    json_out: bool = JsonOption,
) -> None:
    """Group CT series by scanner and protocol (DICOM headers), measure HU offset and noise, map to a reference."""
    from aimd.core.atomic import atomic_write_json
    from aimd.imaging.fingerprint import fingerprint

    table = fingerprint(folder, reference=reference)
    if out is not None:
        atomic_write_json(out, table)
    if json_out:
        print_json(table)
        return
    view = Table(title=f"Device configurations (reference: {table['reference']})")
    for col in ("configuration", "series", "air HU", "noise HU", "offset HU", "window"):
        view.add_column(col, overflow="fold")
    for row in table["configurations"]:
        window = row["recommended_window"]
        view.add_row(
            row["configuration"],
            str(row["series"]),
            "—" if row["air_median_hu"] is None else f"{row['air_median_hu']:g}",
            "—" if row["noise_hu"] is None else f"{row['noise_hu']:g}",
            "—" if row["hu_offset"] is None else f"{row['hu_offset']:+g} ({row['offset_from']})",
            "—" if window is None else f"{window['level']:g}/{window['width']:g}",
        )
    console.print(view)
    for item in table["skipped"]:
        console.print(f"skipped {item['series']}: {item['reason']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``fingerprint`` to the ``aimd data`` group."""
    app.command("fingerprint", epilog=_EXAMPLE)(fingerprint_cmd)


__all__ = ["fingerprint_cmd", "register"]
