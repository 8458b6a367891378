"""Start-up stays light: the help of every command and a few trivial commands import no SciPy,
PyTorch, MONAI, ONNX Runtime or SimpleITK (checked in ``sys.modules`` of a fresh interpreter, not
timed; the times are measured by benchmarks/startup.py).

Package namespaces export their names lazily (:mod:`aimd.core.lazy`); the last tests check that
every exported name still resolves and that a submodule spelled like an exported function does not
shadow it.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

HEAVY = ("scipy", "torch", "monai", "onnxruntime", "openvino", "SimpleITK", "sklearn", "matplotlib")

SCRIPT = """
import contextlib, io, json, sys
from aimd.cli.main import LAZY_COMMANDS, load_command, main
HEAVY = {heavy!r}
def paths():
    for name in LAZY_COMMANDS:
        yield [name, "--help"]
        for sub, cmd in getattr(load_command(name), "commands", {{}}).items():
            yield [name, sub, "--help"]
            for leaf in getattr(cmd, "commands", {{}}):
                yield [name, sub, leaf, "--help"]
    yield from {trivial!r}
out = []
for argv in paths():
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    out.append({{"argv": argv, "code": code, "heavy": [m for m in HEAVY if m in sys.modules]}})
print(json.dumps(out))
"""

TRIVIAL = [["version"], ["annotation", "taxonomy", "show", "--json"], ["annotation", "schema", "--model", "package"]]


def _run_all() -> list[dict[str, object]]:
    src = Path(__file__).resolve().parents[2] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = SCRIPT.format(heavy=HEAVY, trivial=TRIVIAL)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_help_and_trivial_commands_import_no_heavy_library() -> None:
    runs = _run_all()
    groups = {r["argv"][0] for r in runs if len(r["argv"]) == 2}  # type: ignore[index]
    assert groups >= {"data", "qc", "package", "metrics", "evaluate", "model", "annotation", "iq", "serve"}
    assert len(runs) > 60
    assert all(r["code"] == 0 for r in runs), [r for r in runs if r["code"] != 0]
    first_heavy = next((r for r in runs if r["heavy"]), None)
    assert first_heavy is None, f"`aimd {' '.join(first_heavy['argv'])}` imported {first_heavy['heavy']}"  # type: ignore[index]


def test_help_constants_match_the_library() -> None:
    from aimd.annotation import METHODS
    from aimd.cli.annotation import REGISTRATION_METHODS
    from aimd.cli.evaluate import CHARACTERISTIC_NAMES
    from aimd.evaluation import CLAUSE_KEYS

    assert REGISTRATION_METHODS == METHODS
    assert CHARACTERISTIC_NAMES == CLAUSE_KEYS


@pytest.mark.parametrize(
    "package",
    ["aimd.annotation", "aimd.evaluation", "aimd.imaging", "aimd.imaging.deid", "aimd.metrics", "aimd.models"]
    + ["aimd.phantoms", "aimd.reports"],
)
def test_every_exported_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_a_submodule_does_not_shadow_the_function_of_its_name() -> None:
    importlib.import_module("aimd.metrics.icc")
    from aimd.metrics import icc

    assert not isinstance(icc, types.ModuleType) and callable(icc)
