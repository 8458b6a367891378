"""Predictor adapters: ``nn.Module``, TorchScript, ONNX Runtime, OpenVINO, MONAI bundle — and one loader.

:func:`load_predictor` picks the adapter from what a path is: a training run folder (torch), a
MONAI bundle folder, an ``.onnx`` file (ONNX Runtime, or OpenVINO with ``runtime="openvino"``) or
a TorchScript archive.

Example
-------
>>> try:
...     load_predictor("/nonexistent.onnx")
... except Exception as err:
...     print(type(err).__name__)
InvalidInputError
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from aimd.core.errors import InvalidInputError
from aimd.models.adapters.monai_bundle import MonaiBundlePredictor, write_monai_bundle
from aimd.models.adapters.onnx import OnnxPredictor
from aimd.models.adapters.openvino import OpenVinoPredictor
from aimd.models.adapters.torch_module import TorchModulePredictor, load_state_dict_file, load_weights
from aimd.models.adapters.torchscript import TorchScriptPredictor, save_torchscript
from aimd.models.predictor import BasePredictor
from aimd.models.specs import InputSpec, OutputSpec

RUNTIMES = ("onnxruntime", "openvino")


def load_predictor(
    path: str | Path,
    *,
    input_spec: InputSpec | None = None,
    output_spec: OutputSpec | None = None,
    threads: int = 2,
    runtime: str = "onnxruntime",
) -> BasePredictor:
    """Open a model file or folder through the matching adapter.

    Parameters
    ----------
    path:
        Run folder (``run.json``), MONAI bundle folder (``configs/metadata.json``), ``.onnx`` file,
        TorchScript archive (``.ts``/``.pt``/``.pth``/``.jit``), or the name of a shipped reference
        device (``device-lesions``, ``device-nodules``; see :mod:`aimd.models.reference`).
    input_spec, output_spec:
        For ONNX / TorchScript files that carry no aimd specs.
    threads:
        Inference threads of the ONNX runtime (of torch for a shipped reference device).
    runtime:
        For ``.onnx`` files: ``"onnxruntime"`` or ``"openvino"``.
    """
    from aimd.models.reference.shipped import RECIPES, load_reference
    from aimd.models.runs import is_run, load_run

    if str(path) in RECIPES and not Path(path).exists():
        return load_reference(str(path), threads=threads)  # type: ignore[no-any-return]
    p = Path(path)
    if runtime not in RUNTIMES:
        raise InvalidInputError(f"unknown runtime {runtime!r}", where="runtime", hint=f"use one of {list(RUNTIMES)}")
    if not p.exists():
        raise InvalidInputError(
            "model path does not exist",
            where=str(p),
            hint="pass a run folder, a MONAI bundle folder, an .onnx or a TorchScript file",
        )
    if p.is_dir():
        if is_run(p):
            return load_run(p).predictor()
        if (p / "configs" / "metadata.json").is_file():
            return MonaiBundlePredictor(p)
        raise InvalidInputError(
            "folder is neither a training run (run.json) nor a MONAI bundle (configs/metadata.json)",
            where=str(p),
            hint="pass the run or bundle root folder",
        )
    if p.suffix.lower() == ".onnx":
        if runtime == "openvino":
            return OpenVinoPredictor(p, input_spec, output_spec, threads=threads)
        return OnnxPredictor(p, input_spec, output_spec, threads=threads)
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as archive:
            names = archive.namelist()
        if any(n.endswith("/code/__torch__.py") or "/code/" in n for n in names):
            return TorchScriptPredictor(p, input_spec, output_spec)
        raise InvalidInputError(
            "file is a PyTorch state dict, not a runnable model",
            where=str(p),
            hint="use TorchModulePredictor.from_import_path with the network class, or pass "
            "the run folder that holds it",
        )
    raise InvalidInputError(
        f"unknown model file type {p.suffix!r}",
        where=str(p),
        hint="pass a run folder, a MONAI bundle folder, an .onnx or a TorchScript file",
    )


__all__ = [
    "MonaiBundlePredictor",
    "OnnxPredictor",
    "OpenVinoPredictor",
    "RUNTIMES",
    "TorchModulePredictor",
    "TorchScriptPredictor",
    "load_predictor",
    "load_state_dict_file",
    "load_weights",
    "save_torchscript",
    "write_monai_bundle",
]
