"""``aimd data inspect | validate | convert``: image geometry, 001 §7.2 checks, DICOM ↔ NIfTI."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.table import Table

from aimd import imaging
from aimd.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FINDINGS,
    JsonOption,
    console,
    err_console,
    print_json,
    progress_bar,
    render_findings,
)
from aimd.core.config import get_settings
from aimd.core.errors import InvalidInputError
from aimd.core.findings import Severity

if TYPE_CHECKING:
    from aimd.imaging.dicom_read import AmbiguousSeriesError
    from aimd.imaging.volume import Volume

SeriesOption = typer.Option(None, "--series", help="SeriesInstanceUID to use when the folder holds several.")


def _geometry_json(volume: Volume) -> dict[str, Any]:
    geo = volume.geometry()
    return {
        "shape": geo["shape"],
        "size": list(reversed(geo["shape"])),
        "spacing": geo["spacing"],
        "origin": geo["origin"],
        "direction": geo["direction"],
        "modality": volume.modality,
        "series_uid": volume.metadata.get("series_uid") or None,
        "n_files": volume.metadata.get("n_files", 1),
        "axes": {"shape": "z, y, x (array order)", "size": "x, y, z", "spacing": "x, y, z", "origin": "x, y, z"},
    }


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in values) + "]"


def _print_series_table(err: AmbiguousSeriesError) -> None:
    table = Table(title=f"{len(err.series)} series in {err.where}")
    table.add_column("series_uid", overflow="fold")
    for col in ("modality", "description", "files", "shape (z, y, x)"):
        table.add_column(col)
    for s in err.series:
        table.add_row(s.uid or "(none)", s.modality, s.description, str(s.n_files), str(list(s.shape)))
    console.print(table)


def _quiet_readers() -> None:
    """pydicom warns (UserWarning) on every odd element of a damaged file; aimd reports the file instead."""
    warnings.filterwarnings("ignore", category=UserWarning, module=r"pydicom(\.|$)")


def _read(path: Path, series: str | None, json_out: bool) -> Volume:
    _quiet_readers()
    with progress_bar(f"reading {path.name}", None) as advance:
        try:
            return imaging.read_volume(path, series, on_file=advance)
        except imaging.AmbiguousSeriesError as err:
            if json_out:
                print_json(err.to_dict())
            else:
                _print_series_table(err)
            err_console.print(f"[red]error:[/red] {err}", highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None


def inspect(
    path: Path = typer.Argument(..., help="DICOM series folder, DICOM file, or NIfTI .nii/.nii.gz file."),
    series: str | None = SeriesOption,
    json_out: bool = JsonOption,
) -> None:
    """Show an image's shape, spacing, origin and direction in LPS mm (same numbers as SimpleITK).

    A folder holding several series lists them and exits 2; choose one with --series.
    """
    volume = _read(path, series, json_out)
    info = _geometry_json(volume)
    if json_out:
        print_json(info)
        return
    table = Table(title=str(path), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    d = np.asarray(info["direction"]).reshape(3, 3)
    rows = [
        ("modality", str(info["modality"])),
        ("series_uid", str(info["series_uid"] or "")),
        ("files", str(info["n_files"])),
        ("size (x, y, z) voxels", " × ".join(str(n) for n in info["size"])),
        ("spacing (x, y, z) mm", _fmt(info["spacing"])),
        ("array shape (z, y, x)", str(info["shape"])),
        ("origin LPS mm", _fmt(info["origin"])),
        ("direction (rows)", "\n".join(_fmt(list(r)) for r in d)),
        ("dtype", str(volume.array.dtype)),
        ("value range", f"{volume.array.min():.6g} … {volume.array.max():.6g}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)


def validate(
    path: Path = typer.Argument(..., help="DICOM folder (all series are checked), DICOM file or NIfTI file."),
    series: str | None = SeriesOption,
    quality: bool = typer.Option(
        True, "--quality/--no-quality", help="Also check resolution, noise, SNR, contrast and blurred/noisy slices (g)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Check geometry, pixel values and image quality against 001 §7.2 a–g; exit 1 when errors are found.

    Reports unreadable files, mixed series/orientations, missing or non-orthonormal direction,
    missing origin or spacing, missing/duplicate slices, non-uniform spacing, flipped slice order
    and out-of-range CT values, each with its clause and location (file, slice, tag).
    """
    get_settings()  # an invalid setting is bad input (exit 2) before any work
    _quiet_readers()
    with progress_bar(f"checking {path.name}", None) as advance:
        findings = imaging.check_series(path, series, on_file=advance, quality=quality)
    n_err = sum(f.severity is Severity.ERROR for f in findings)
    n_warn = sum(f.severity is Severity.WARNING for f in findings)
    if json_out:
        print_json(
            {
                "path": str(path),
                "findings": [f.model_dump(mode="json") for f in findings],
                "errors": n_err,
                "warnings": n_warn,
            }
        )
    else:
        render_findings(findings, f"001 §7.2 checks of {path}")
    if n_err:
        raise typer.Exit(EXIT_FINDINGS)


def convert(
    src: Path = typer.Argument(..., help="DICOM series folder, DICOM file or NIfTI file to read."),
    dst: Path = typer.Argument(..., help="Output: a path ending .nii/.nii.gz (NIfTI) or a folder (DICOM)."),
    series: str | None = SeriesOption,
    force: bool = typer.Option(False, "--force", help="Replace an existing output."),
    json_out: bool = JsonOption,
) -> None:
    """Convert between a DICOM series and NIfTI keeping the geometry (every voxel's LPS position)."""
    exists = dst.exists() and (dst.is_file() or any(dst.iterdir()))
    if exists and not force:
        raise InvalidInputError(
            "output already exists", where=str(dst), hint="choose another output or pass --force to replace it"
        )
    volume = _read(src, series, json_out)
    with progress_bar(f"writing {dst.name}", None):
        files = imaging.write_volume(volume, dst, overwrite=force)
    payload = {
        "src": str(src),
        "dst": str(dst),
        "format": "nifti" if imaging.is_nifti_path(dst) else "dicom",
        "n_files": len(files),
        **{k: v for k, v in _geometry_json(volume).items() if k != "n_files"},
    }
    if json_out:
        print_json(payload)
    else:
        console.print(
            f"wrote {len(files)} file(s) to {dst} ({payload['format']}, shape {payload['shape']}, "
            f"spacing {_fmt(payload['spacing'])} mm)"
        )


def register(app: typer.Typer) -> None:
    """Add ``inspect``, ``validate`` and ``convert`` to the ``aimd data`` group."""
    app.command("inspect", epilog="Example: aimd data inspect scan/ --series 1.2.3 --json")(inspect)
    app.command("validate", epilog="Example: aimd data validate scan/ --json")(validate)
    app.command("convert", epilog="Example: aimd data convert scan/ scan.nii.gz --force")(convert)


__all__ = ["convert", "inspect", "register", "validate"]
