"""``aimd data phantom``: generate a reproducible multimodal phantom dataset."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import typer

from aimd import annotation, phantoms
from aimd.cli.common import JsonOption, console, print_json, progress_bar
from aimd.core.errors import InvalidInputError

_EXAMPLE = "Example: aimd data phantom out/ --cases 5 --seed 1 --size 64 --json"


def phantom(
    out: Path = typer.Argument(..., help="Output folder (must be new or empty unless --force)."),
    cases: int = typer.Option(10, "--cases", help="Number of cases (>= 1)."),
    seed: int = typer.Option(0, "--seed", help="Master seed: same seed, byte-identical output."),
    size: int = typer.Option(128, "--size", help="CT grid size: size^3 voxels (32-512)."),
    sites: int = typer.Option(3, "--sites", help="Number of acquisition sites (1-6)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (default: CPU count)."),
    annotators: int = typer.Option(0, "--annotators", help="Simulated readers' annotation packages per case (0-10)."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
    json_out: bool = JsonOption,
) -> None:
    """Generate phantom cases: CT (DICOM + NIfTI), labels, radiograph, reports, clinical fields.

    Layout: OUT/dataset.json and OUT/cases/<case_id>/ (ct/, ct.nii.gz, labels.nii.gz, lesions.nii.gz,
    dx.dcm, dx_boxes.json, lesions.json, report_zh.txt, report_en.txt, report.json, clinical.json).
    """
    phantoms.validate_params(cases, size, sites)
    if not 0 <= annotators <= 10:
        raise InvalidInputError(
            f"annotators must be 0-10, got {annotators}",
            where="--annotators",
            hint="pass --annotators 3 for three simulated readers",
        )
    if workers is not None and workers < 1:
        raise InvalidInputError(f"workers must be at least 1, got {workers}", where="--workers")
    start = time.perf_counter()
    # The bar (and its refresh thread) starts at the first finished case, after the worker processes
    # have been forked, so no child inherits a lock held by that thread.
    bars = contextlib.ExitStack()
    advance: list[Callable[[int], object]] = []

    def on_case(n: int = 1) -> None:
        if not advance:
            advance.append(bars.enter_context(progress_bar("phantom cases", cases)))
        advance[0](n)

    with bars:
        index = phantoms.generate_dataset(
            out, cases=cases, seed=seed, size=size, sites=sites, workers=workers, force=force, progress=on_case
        )
    packages: list[Path] = []
    if annotators:
        with progress_bar("simulated readers", cases) as advance_readers:
            packages = annotation.simulate_annotators(out, annotators, seed, progress=advance_readers)
    seconds = time.perf_counter() - start
    splits = {name: len(index["split"][name]) for name in ("train", "val", "test")}
    lesions = sum(c["lesion_count"] for c in index["cases"])
    files = sum(len(c["files"]) for c in index["cases"]) + 1
    summary = {
        "out": str(out),
        "cases": cases,
        "seed": seed,
        "size": size,
        "sites": sites,
        "lesions": lesions,
        "annotation_packages": len(packages),
        "files": files,
        "splits": splits,
        "seconds": round(seconds, 3),
        "cases_per_second": round(cases / seconds, 3) if seconds > 0 else None,
    }
    if json_out:
        print_json(summary)
    else:
        split_text = ", ".join(f"{n} {name}" for name, n in splits.items())
        readers = f", {len(packages)} annotation packages" if packages else ""
        console.print(
            f"[green]wrote {cases} cases[/green] ({lesions} lesions, {files} files{readers}) to {out} in "
            f"{seconds:.1f} s — split {split_text}",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``phantom`` to the ``aimd data`` group."""
    app.command("phantom", epilog=_EXAMPLE)(phantom)


__all__ = ["phantom", "register"]
