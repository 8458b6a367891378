"""A function run in a child process inside a network namespace (000 §5.2.9 b enforced, native code included).

:func:`run_isolated` starts ``python -m aimd.evaluation.support.isolated`` under ``unshare --net``
(:func:`~aimd.evaluation.support.egress.isolated_argv`). The child imports ``"module:function"``,
calls it with the given JSON keyword arguments (and a ``progress`` callback when the function takes
one), sends each progress message back as a line on its stdout and writes the JSON result to a file
the parent reads. ``aimd demo`` runs its evaluation stage this way, as ``aimd evaluate`` re-runs
itself in a namespace: inside, the only interface is a loopback that is down, so nothing the
evaluation runs — Python, ONNX Runtime, OpenVINO, libtorch — can reach the network.

Example
-------
>>> scope = run_isolated("aimd.evaluation.support.egress:egress_scope", {})
>>> scope is None or scope["interfaces"] == ["lo"]
True
"""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.core.atomic import atomic_write_json
from aimd.core.errors import AimdError
from aimd.evaluation.support.egress import isolated_argv, isolated_env

PROGRESS = "aimd-progress "


def run_isolated(
    target: str, kwargs: dict[str, Any], *, progress: Callable[[str], object] | None = None
) -> dict[str, Any] | None:
    """``target(**kwargs)`` (``"package.module:function"``) in a network namespace; its JSON result.

    Returns ``None`` when ``unshare --net`` cannot make a namespace here, so the caller can run the
    function in-process (the evidence then says egress was watched, not enforced). An
    :class:`~aimd.core.errors.AimdError` raised in the child is raised again here with its message.
    """
    with tempfile.TemporaryDirectory(prefix="aimd-isolated-") as tmp:
        result = Path(tmp) / "result.json"
        argv = isolated_argv([sys.executable, "-m", __name__, target, json.dumps(kwargs), str(result)])
        if argv is None:
            return None
        with (Path(tmp) / "stderr.txt").open("w+", encoding="utf-8") as err:
            env = isolated_env()
            with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True) as proc:
                assert proc.stdout is not None
                for line in proc.stdout:
                    if line.startswith(PROGRESS) and progress is not None:
                        progress(line[len(PROGRESS) :].rstrip("\n"))
            err.seek(0)
            log = err.read()
        answer = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else None
    if proc.returncode == 0 and isinstance(answer, dict) and "result" in answer:
        value: dict[str, Any] = answer["result"]
        return value
    if isinstance(answer, dict) and "error" in answer:
        raise AimdError(answer["error"]["message"], where=answer["error"]["where"], hint=answer["error"]["hint"])
    raise RuntimeError(f"{target} failed in its network namespace (exit {proc.returncode}):\n{log[-3000:]}")


def _child(target: str, kwargs_json: str, result: str) -> int:
    module, _, name = target.partition(":")
    function = getattr(importlib.import_module(module), name)
    kwargs = json.loads(kwargs_json)
    if "progress" in inspect.signature(function).parameters:
        kwargs["progress"] = lambda message: print(PROGRESS + str(message), flush=True)
    try:
        value = function(**kwargs)
    except AimdError as err:
        atomic_write_json(result, {"error": {"message": err.message, "where": err.where, "hint": err.hint}})
        return 2
    atomic_write_json(result, {"result": value})
    return 0


if __name__ == "__main__":
    sys.exit(_child(*sys.argv[1:4]))


__all__ = ["PROGRESS", "run_isolated"]
