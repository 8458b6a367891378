"""Benchmark: Dice + HD + HD95 + ASSD on 3-D volumes, aimd vs MONAI (and DeepMind surface-distance).

Two synthetic cases on a 512×512×200 grid (spacing 0.7 × 0.7 × 2.5 mm):

* ``lesions`` — three small ellipsoidal lesions far apart, the prediction shifted and resized;
* ``organ``   — one large ellipsoidal organ, the prediction shifted and resized.

aimd runs twice: with its default KD-tree backend (pykdtree when installed) and forced onto
scipy's cKDTree; both give identical values.

Each library runs in its own subprocess so its peak RSS is its own; tracemalloc reports the
peak of Python/NumPy allocations during the timed call. The parent prints times, the ratio
MONAI / aimd, the largest value difference to MONAI and the memory figures, all from one run.

DeepMind's ``surface-distance`` (if installed) uses a different border and percentile definition
(surfel-area weighted), so its values are shown for scale, not compared for equality.

Usage: ``python benchmarks/seg_metrics.py [--repeat 3] [--json]``
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np

from value_gate import check_values

SHAPE = (200, 512, 512)  # (z, y, x)
SPACING_ZYX = (2.5, 0.7, 0.7)
METRICS = ("dice", "hd", "hd95", "assd")
TOLERANCE = 1e-6  # Dice and mm: the same definition must give the same number


Vec = tuple[float, float, float]


def _ellipsoid(mask: np.ndarray, centre: Vec, radii: Vec) -> None:
    lo = [max(int(c - r) - 1, 0) for c, r in zip(centre, radii, strict=True)]
    hi = [min(int(c + r) + 2, n) for c, r, n in zip(centre, radii, mask.shape, strict=True)]
    grid = np.ogrid[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1.0
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] |= inside


def make_case(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference and prediction masks (uint8, label 1) for the named case."""
    ref = np.zeros(SHAPE, bool)
    pred = np.zeros(SHAPE, bool)
    if name == "lesions":
        for (z, y, x), r in [((40, 100, 120), 4.0), ((110, 300, 400), 6.0), ((170, 420, 90), 3.0)]:
            _ellipsoid(ref, (z, y, x), (r / 2.5 * 0.7 * 1.5, r, r))
            _ellipsoid(pred, (z + 1, y + 2, x - 1), (r / 2.5 * 0.7 * 1.5, r * 1.2, r * 0.9))
    elif name == "organ":
        _ellipsoid(ref, (100, 256, 240), (55, 150, 120))
        _ellipsoid(pred, (102, 250, 244), (53, 154, 117))
    else:
        raise ValueError(f"unknown case {name!r}")
    return ref.astype(np.uint8), pred.astype(np.uint8)


def run_aimd(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from aimd.metrics import segmentation_metrics

    m = segmentation_metrics(ref, pred, spacing=SPACING_ZYX, labels=[1])[1]
    return {"dice": m.dice, "hd": m.hd, "hd95": m.hd95, "assd": m.assd}


def run_aimd_scipy(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """aimd forced onto scipy's cKDTree (the fallback when pykdtree is not installed)."""
    import aimd.metrics.surface

    aimd.metrics.surface.KDTREE_BACKEND = "scipy"
    return run_aimd(ref, pred)


def run_monai(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    import torch
    from monai.metrics import compute_average_surface_distance, compute_dice, compute_hausdorff_distance

    y = torch.from_numpy(ref[None, None].astype(np.float32))
    yp = torch.from_numpy(pred[None, None].astype(np.float32))
    kw = {"include_background": True, "spacing": list(SPACING_ZYX)}
    return {
        "dice": compute_dice(yp, y, include_background=True).item(),
        "hd": compute_hausdorff_distance(yp, y, **kw).item(),
        "hd95": compute_hausdorff_distance(yp, y, percentile=95, **kw).item(),
        "assd": compute_average_surface_distance(yp, y, symmetric=True, **kw).item(),
    }


def run_deepmind(ref: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    import surface_distance as sd

    r, p = ref.astype(bool), pred.astype(bool)
    dists = sd.compute_surface_distances(r, p, SPACING_ZYX)
    a, b = sd.compute_average_surface_distance(dists)
    return {
        "dice": float(sd.compute_dice_coefficient(r, p)),
        "hd": float(sd.compute_robust_hausdorff(dists, 100)),
        "hd95": float(sd.compute_robust_hausdorff(dists, 95)),
        "assd": float((a + b) / 2),
    }


RUNNERS = {
    "aimd": run_aimd,
    "aimd (scipy kd)": run_aimd_scipy,
    "monai": run_monai,
    "surface-distance": run_deepmind,
}


def child(lib: str, case: str, repeat: int) -> dict[str, Any]:
    """Time ``lib`` on ``case`` (best of ``repeat``) and measure its memory; runs in a subprocess."""
    warnings.filterwarnings("ignore")
    ref, pred = make_case(case)
    runner = RUNNERS[lib]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runner(ref, pred)  # warm-up: imports, lazy initialisation
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        values = runner(ref, pred)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    runner(ref, pred)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "lib": lib,
        "case": case,
        "seconds": min(times),
        "values": values,
        "tracemalloc_peak_mb": traced_peak / 2**20,
        "peak_rss_mb": rss_after / 1024,
        "rss_growth_mb": (rss_after - rss_before) / 1024,
    }


def _available(lib: str) -> bool:
    module = {"monai": "monai", "surface-distance": "surface_distance"}.get(lib, "aimd.metrics")
    code = f"import {module}"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def main() -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("LIB", "CASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], args.child[1], args.repeat)))
        return
    libs = [lib for lib in RUNNERS if _available(lib)]
    rows = []
    for case in ("lesions", "organ"):
        for lib in libs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", lib, case, "--repeat", str(args.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    summary = []
    for case in ("lesions", "organ"):
        by_lib = {r["lib"]: r for r in rows if r["case"] == case}
        aimd, monai = by_lib["aimd"], by_lib.get("monai")
        for lib, r in by_lib.items():  # both KD-tree backends and MONAI must agree before any time is shown
            if lib not in ("aimd", "deepmind"):
                check_values(f"{case}: aimd vs {lib}", aimd["values"], r["values"], TOLERANCE)
        entry: dict[str, Any] = {"case": case, "shape_zyx": SHAPE, "spacing_zyx_mm": SPACING_ZYX}
        entry["libs"] = by_lib
        if monai:
            entry["speedup_vs_monai"] = monai["seconds"] / aimd["seconds"]
            entry["max_abs_diff_vs_monai"] = max(abs(aimd["values"][k] - monai["values"][k]) for k in METRICS)
        summary.append(entry)
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    grid = f"{SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} (x,y,z)"
    from aimd.metrics.surface import KDTREE_BACKEND

    print(f"grid {grid}, spacing {SPACING_ZYX[::-1]} mm (x,y,z); best of {args.repeat} runs")
    print(f"aimd default KD-tree backend: {KDTREE_BACKEND}")
    for entry in summary:
        print(f"\n== {entry['case']} ==")
        header = f"{'library':18s} {'time s':>8s} {'peak RSS MB':>12s} {'traced MB':>10s}  "
        print(header + "  ".join(METRICS))
        for lib, r in entry["libs"].items():
            vals = "  ".join(f"{r['values'][k]:.5f}" for k in METRICS)
            mem = f"{r['peak_rss_mb']:12.0f} {r['tracemalloc_peak_mb']:10.1f}"
            print(f"{lib:18s} {r['seconds']:8.3f} {mem}  {vals}")
        if "speedup_vs_monai" in entry:
            print(
                f"aimd is {entry['speedup_vs_monai']:.1f}x faster than MONAI; "
                f"largest value difference {entry['max_abs_diff_vs_monai']:.2e} (dice, mm)"
            )
    print("\nsurface-distance values use its own surfel-weighted definition and are shown for scale only.")


if __name__ == "__main__":
    main()
