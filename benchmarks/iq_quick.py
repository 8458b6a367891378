"""Benchmark: wall time of ``aimd iq run --profile quick`` and rollback durations per data size (002 §6.3.2 b).

1. Installs a signed probe release into a fresh prefix and runs ``aimd iq run --profile quick`` on it
   in a new process (the run includes the rollback drills of 1 MB and 50 MB and the concurrency and
   disk-full drills). Target of the IQ issue: ≤ 5 minutes on 2 CPU cores.
2. Times ``rollback`` after an upgrade with small and large data (``--sizes`` in MB) and, as the peer
   measured in the same run, a plain ``cp -a`` of the same data and configuration — the floor any
   restore-by-copy has. The ratio rollback / copy is printed; the hash identity of the restored state is
   checked first.

The load average before and after is printed: other processes on the machine stretch every figure.

Usage: ``python benchmarks/iq_quick.py [--sizes 1 50 500] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 300.0


def _quick_run(root: Path) -> dict[str, Any]:
    from aimd.iq.drill import make_probe_bundle
    from aimd.iq.install import install

    install(make_probe_bundle(root / "bundles", "1.0.0"), root / "prefix", operator="benchmark")
    cmd = [
        sys.executable,
        "-m",
        "aimd.cli.main",
        "iq",
        "run",
        "--prefix",
        str(root / "prefix"),
        "--out",
        str(root / "report"),
        "--profile",
        "quick",
        "--json",
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"aimd iq run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    report = json.loads((root / "report" / "iq-report.json").read_text(encoding="utf-8"))
    return {
        "wall_s": round(wall, 2),
        "within_target": wall <= TARGET_S,
        "conclusion": report["basic"]["conclusion"],
        "checks": {c["key"]: [c["verdict"], c["seconds"]] for c in report["checks"]},
    }


def _rollback_vs_copy(root: Path, size_mb: float) -> dict[str, Any]:
    from aimd.iq.drill import rollback_drill
    from aimd.iq.install import Layout

    drill = rollback_drill(root, data_bytes=int(size_mb * 1e6))
    if not drill["identical"]:
        raise SystemExit(f"rollback of {size_mb} MB did not restore the state hash-identically")
    layout = Layout(root / "prefix")
    (root / "copy-peer").mkdir()
    start = time.perf_counter()
    subprocess.run(["cp", "-a", str(layout.data), str(layout.config), str(root / "copy-peer")], check=True)
    copy_s = time.perf_counter() - start
    return {
        "data_mb": size_mb,
        "install_s": drill["install_s"],
        "rollback_s": drill["rollback_s"],
        "cp_a_s": round(copy_s, 3),
        "ratio_rollback_to_copy": round(drill["rollback_s"] / max(copy_s, 1e-6), 2),
        "identical": drill["identical"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1.0, 50.0, 500.0], help="data sizes in MB")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="aimd-iq-bench-") as tmp:
        root = Path(tmp)
        quick = _quick_run(root / "quick")
        rollbacks = [_rollback_vs_copy(root / f"rb-{s:g}", s) for s in args.sizes]
    out = {
        "quick_profile": quick,
        "rollback": rollbacks,
        "target_s": TARGET_S,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"aimd iq run --profile quick: {quick['wall_s']:.1f} s (target ≤ {TARGET_S:.0f} s: "
        f"{'met' if quick['within_target'] else 'NOT met'}), conclusion {quick['conclusion']}"
    )
    slow = sorted(quick["checks"].items(), key=lambda kv: -kv[1][1])[:5]
    print("  slowest checks: " + ", ".join(f"{k} {v[1]:.1f} s" for k, v in slow))
    print(f"{'data MB':>8} {'install s':>10} {'rollback s':>11} {'cp -a s':>8} {'rollback/cp':>12}")
    for r in rollbacks:
        print(
            f"{r['data_mb']:>8g} {r['install_s']:>10.2f} {r['rollback_s']:>11.2f} {r['cp_a_s']:>8.2f} "
            f"{r['ratio_rollback_to_copy']:>12.2f}"
        )
    print(f"load average before {out['load_before']}, after {out['load_after']}")


if __name__ == "__main__":
    main()
