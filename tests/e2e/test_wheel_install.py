"""``pip install`` of the built wheel gives a working aimd: every subpackage imports, ``aimd --help`` runs.

The wheel is built from a copy of the checkout (no build isolation, so no network). It is installed
without dependencies into a fresh virtual environment that sees this environment's packages through a
``.pth`` line (offline and fast); ``pip check`` then proves that every dependency the wheel declares,
PyTorch included, is satisfied there, and nothing is imported from the checkout.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import aimd

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_wheel_installs_and_runs(tmp_path: Path) -> None:
    src = tmp_path / "checkout"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ]
    )
    wheel = next((tmp_path / "dist").glob("aimd-*.whl"))

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "outer-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])
    checked = subprocess.run([str(py), "-m", "pip", "check"], capture_output=True, text=True, timeout=300)
    assert "aimd" not in checked.stdout, checked.stdout  # aimd's own requirements are all met

    names = sorted(m.name for m in pkgutil.walk_packages(aimd.__path__, "aimd.") if m.ispkg)
    code = (
        f"import importlib, aimd\nassert aimd.__file__.startswith({str(site)!r}), aimd.__file__\n"
        f"for n in {names!r}: importlib.import_module(n)\nprint('imported', len({names!r}))\n"
    )
    assert "imported" in _run([str(py), "-c", code]).stdout
    requires = _run([str(py), "-c", "import importlib.metadata as m; print(m.requires('aimd'))"]).stdout
    assert "torch" in requires and 'extra == "serve"' in requires and 'extra == "docs"' in requires
    help_out = _run([str(venv / "bin" / "aimd"), "--help"], cwd=tmp_path).stdout
    assert "data" in help_out and "evaluate" in help_out
    assert _run([str(venv / "bin" / "aimd"), "--version"], cwd=tmp_path).stdout.startswith("aimd ")
