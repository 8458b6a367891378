"""Start-up time of the ``aimd`` command next to peers measured in the same run.

Peers: ``python -c pass`` (the interpreter alone) and a bare Typer app with one command (the CLI
framework alone). Each command runs ``--repeat`` times in a fresh process; the median wall time is
reported, with its ratio to the bare Typer app, and the machine's load average. Target: ``aimd --help``,
``aimd --version``, ``aimd version``, the help of every command group and commands that need neither
PyTorch nor SciPy start in under 1 s.

Usage: python benchmarks/startup.py [--repeat 5] [--src other/checkout/src]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

BARE_TYPER = (
    "import typer\n"
    "app = typer.Typer()\n"
    "@app.command()\n"
    "def hello(name: str = 'x') -> None:\n"
    "    print(name)\n"
    "@app.command()\n"
    "def bye() -> None:\n"
    "    pass\n"
    "app()\n"
)
AIMD = "from aimd.cli.main import run; run()"

CASES: list[tuple[str, list[str]]] = [
    ("python -c pass", [sys.executable, "-c", "pass"]),
    ("bare Typer app --help", [sys.executable, "-c", BARE_TYPER, "--help"]),
    ("aimd --help", [sys.executable, "-c", AIMD, "--help"]),
    ("aimd --version", [sys.executable, "-c", AIMD, "--version"]),
    ("aimd version", [sys.executable, "-c", AIMD, "version"]),
    ("aimd data --help", [sys.executable, "-c", AIMD, "data", "--help"]),
    ("aimd data inspect --help", [sys.executable, "-c", AIMD, "data", "inspect", "--help"]),
    ("aimd qc check --help", [sys.executable, "-c", AIMD, "qc", "check", "--help"]),
    ("aimd package --help", [sys.executable, "-c", AIMD, "package", "--help"]),
    ("aimd metrics --help", [sys.executable, "-c", AIMD, "metrics", "--help"]),
    ("aimd evaluate --help", [sys.executable, "-c", AIMD, "evaluate", "--help"]),
    ("aimd model train --help", [sys.executable, "-c", AIMD, "model", "train", "--help"]),
    ("aimd annotation taxonomy show", [sys.executable, "-c", AIMD, "annotation", "taxonomy", "show", "--json"]),
]
#: Commands that do not need PyTorch or SciPy: each should start in under 1 s.
LIGHT = [name for name, _ in CASES if name.startswith("aimd") and "model train" not in name]


def median_seconds(cmd: list[str], repeat: int, env: dict[str, str]) -> float:
    """Median wall time of ``repeat`` fresh runs of ``cmd``; NaN when it does not exit 0."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            return float("nan")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", help="put this src/ folder first on the path (compare another checkout)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.path.abspath(args.src) + os.pathsep + env.get("PYTHONPATH", "")
    results = {name: median_seconds(cmd, args.repeat, env) for name, cmd in CASES}
    peer = results["bare Typer app --help"]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)")
    print(f"{'command':<32} {'median s':>9} {'× bare Typer':>13}")
    for name, seconds in results.items():
        print(f"{name:<32} {seconds:>9.3f} {seconds / peer:>13.2f}")
    slow = [n for n in LIGHT if not results[n] < 1.0]
    print("target (< 1 s):", "met" if not slow else f"missed by {', '.join(slow)}")


if __name__ == "__main__":
    main()
