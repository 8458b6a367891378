"""Ray scaling of batch segmentation metrics (``aimd metrics seg --ray``): 1 worker vs 2 workers.

Synthetic case masks (ellipsoids, the prediction shifted and resized per case) on a
``--size``² × ``--slices`` grid are scored three ways in one run: in this process, as Ray tasks on a
local Ray instance with 1 CPU, and with 2 CPUs. Ray start-up is outside the timed part. The reports
must agree exactly (every per-case value and the summary) before any speed-up is printed; on a
machine with 2 free cores the target is a speed-up of at least 1.7×.

Usage: ``python benchmarks/ray_scaling.py [--cases 8] [--size 160] [--slices 48] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import ray

from aimd.metrics.batch import case_pairs, segmentation_batch
from value_gate import check_values


def _ellipsoid(shape: tuple[int, int, int], centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((z - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 + (
        (x - centre[2]) / radii[2]
    ) ** 2 <= 1.0


def write_cases(root: Path, cases: int, size: int, slices: int) -> tuple[Path, Path]:
    """``cases`` reference/prediction mask pairs (two labels) as NIfTI files under ``root``."""
    rng = np.random.default_rng(5)
    shape = (slices, size, size)
    for sub in ("ref", "pred"):
        (root / sub).mkdir(parents=True)
    for i in range(cases):
        centre = np.array(shape) / 2 + rng.normal(0, 2, 3)
        radii = np.array([slices * 0.3, size * 0.3, size * 0.25])
        ref = _ellipsoid(shape, centre, radii).astype(np.uint8)
        ref[_ellipsoid(shape, centre + [0, size * 0.1, 0], radii * 0.3)] = 2
        pred = _ellipsoid(shape, centre + rng.normal(0, 2, 3), radii * rng.uniform(0.9, 1.1, 3)).astype(np.uint8)
        pred[_ellipsoid(shape, centre + [1, size * 0.1 + 2, 1], radii * 0.28)] = 2
        for sub, arr in (("ref", ref), ("pred", pred)):
            affine = np.diag([0.7, 0.7, 2.5, 1.0])
            nib.save(
                nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), affine),
                root / sub / f"case{i:02d}.nii.gz",
            )
    return root / "ref", root / "pred"


def flat(report: dict[str, Any]) -> dict[str, float]:
    """Every number of a report under a dotted key (None/NaN become a sentinel so they compare)."""
    out: dict[str, float] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}", v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(f"{prefix}[{i}]", v)
        elif isinstance(value, bool | int | float):
            out[prefix] = -1e300 if value != value else float(value)
        elif value is None:
            out[prefix] = -2e300

    walk("", report)
    return out


def timed_on_ray(pairs: list[tuple[str, Path, Path]], cpus: int, repeat: int) -> tuple[float, dict[str, Any]]:
    """Best wall time of ``repeat`` runs on a local Ray instance with ``cpus`` CPUs (start-up not timed)."""
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        segmentation_batch(pairs[:cpus], None, ray="local")  # warm the worker processes
        times, report = [], {}
        for _ in range(repeat):
            start = time.perf_counter()
            report = segmentation_batch(pairs, None, ray="local")
            times.append(time.perf_counter() - start)
        return min(times), report
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--slices", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aimd-bench-ray-"))
    try:
        pairs = case_pairs(*write_cases(work, args.cases, args.size, args.slices))
        segmentation_batch(pairs[:1], None, workers=1)  # warm imports and caches as the Ray runs are warmed
        start = time.perf_counter()
        single = segmentation_batch(pairs, None, workers=1)
        t0 = time.perf_counter() - start
        t1, one = timed_on_ray(pairs, 1, args.repeat)
        t2, two = timed_on_ray(pairs, 2, args.repeat)
        values = flat(single)
        diff1 = check_values("Ray, 1 worker vs one process", flat(one), values, 0.0)
        diff2 = check_values("Ray, 2 workers vs one process", flat(two), values, 0.0)
        if set(flat(one)) != set(values) or set(flat(two)) != set(values):
            print("VALUES DIFFER: the reports hold different fields")
            raise SystemExit(1)
        result = {
            "cases": args.cases,
            "grid": [args.slices, args.size, args.size],
            "values_compared": len(values),
            "max_difference": max(diff1, diff2),
            "seconds_one_process": round(t0, 3),
            "seconds_1_worker": round(t1, 3),
            "seconds_2_workers": round(t2, 3),
            "speed_up": round(t1 / t2, 2),
            "cpu_count": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()],
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"aimd metrics seg --ray: {args.cases} cases of {args.slices}x{args.size}x{args.size}, "
                f"{len(values)} values equal to the one-process run ({t0:.2f} s); 1 worker {t1:.2f} s, "
                f"2 workers {t2:.2f} s "
                f"= {t1 / t2:.2f}x speed-up (target >= 1.7x on 2 free cores; load average "
                f"{result['load_average'][0]})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
