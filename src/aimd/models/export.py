"""Export a trained run (003 §3.3): ONNX with dynamic batch, INT8 quantisation, TorchScript, MONAI bundle.

:func:`export_run` writes ``RUN/export/`` atomically and reports, on the run's validation split:

* the ONNX graph checked against PyTorch — maximum absolute difference of the logits;
* INT8 quantisation with ONNX Runtime, ``static`` (QDQ, per-channel weights, activations calibrated
  on training images) and/or ``dynamic`` (weights only), each with its accuracy change (Dice or
  AUC) against eager PyTorch fp32 (003 §3.3.1);
* every ONNX file run by each requested runtime — ONNX Runtime and OpenVINO — with its accuracy
  change, and OpenVINO's fp32 logits checked against PyTorch too.

Every exported file carries the model's input/output specs (ONNX ``metadata_props``, TorchScript
extra file, bundle metadata) so the adapters can load it without side files.

Example
-------
>>> import tempfile, pathlib, torch
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
>>> spec_in = InputSpec(modality="CT", patch_size=(8, 8))
>>> spec_out = OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid")
>>> _ = export_module_onnx(torch.nn.Conv2d(1, 1, 3, padding=1), path, spec_in, spec_out)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.atomic import atomic_dir, atomic_file, atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.core.logging import get_logger
from aimd.models.adapters.monai_bundle import write_monai_bundle
from aimd.models.adapters.onnx import KEY_INPUT, KEY_META, KEY_OUTPUT, OnnxPredictor
from aimd.models.adapters.openvino import OpenVinoPredictor
from aimd.models.adapters.torchscript import save_torchscript
from aimd.models.data import ArraySet, load_index, load_split
from aimd.models.evaluate import evaluate_logits, headline
from aimd.models.runs import Run, load_run
from aimd.models.specs import InputSpec, OutputSpec, spec_to_json

QuantMode = Literal["static", "dynamic"]
Runtime = Literal["onnxruntime", "openvino"]
_log = get_logger("aimd.models.export")


def _per_tensor_fallback(record: logging.LogRecord) -> bool:
    # ONNX Runtime logs one line per 1-D weight (norm scales, biases) that cannot be quantised per
    # channel and is quantised per tensor instead: expected for every normalisation layer, not news
    return "is out-of-range for weight" not in record.getMessage()


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The ONNX exporter prints progress on stdout; keep stdout clean for ``--json`` output."""
    root = logging.getLogger()
    root.addFilter(_per_tensor_fallback)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(_per_tensor_fallback)


def set_onnx_metadata(
    model: onnx.ModelProto, input_spec: InputSpec, output_spec: OutputSpec, metadata: dict[str, Any] | None = None
) -> None:
    """Write the aimd specs into ``model.metadata_props`` (replacing earlier values)."""
    values = {
        KEY_INPUT: spec_to_json(input_spec),
        KEY_OUTPUT: spec_to_json(output_spec),
        KEY_META: json.dumps(metadata or {}, sort_keys=True, default=str),
    }
    keep = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in values.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def export_module_onnx(
    module: nn.Module,
    path: str | Path,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    metadata: dict[str, Any] | None = None,
    *,
    opset: int = 18,
    exporter: Literal["dynamo", "torchscript"] = "dynamo",
) -> Path:
    """Export ``module`` to ONNX with a dynamic batch axis and the specs embedded.

    Models without a fixed input size also get dynamic spatial axes (multiples of
    ``input_spec.size_multiple``), so the graph accepts every size PyTorch does.

    Parameters
    ----------
    module:
        Network returning logits.
    path:
        Target ``.onnx`` file (written atomically).
    opset:
        ONNX opset (18 default).
    exporter:
        ``dynamo`` (``torch.export`` + onnxscript, the default) or ``torchscript`` (PyTorch's older
        tracing exporter: much faster to run, for convolutional networks).
    """
    path = Path(path)
    example = torch.zeros(input_spec.input_shape(batch=2))
    module = module.eval()
    axes: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=4096)}
    names = {0: "batch"}
    if not input_spec.fixed_size:  # fully convolutional: any size that is a multiple of size_multiple
        for i, name in enumerate("hwd"[: input_spec.dims]):
            step = torch.export.Dim(name, min=1, max=4096 // input_spec.size_multiple)
            axes[2 + i] = step * input_spec.size_multiple if input_spec.size_multiple > 1 else step
            names[2 + i] = name
    with atomic_file(path, suffix=".onnx") as tmp, _quiet_stdout():
        if exporter == "dynamo":
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["image"],
                output_names=["logits"],
                opset_version=opset,
                dynamic_shapes=(axes,),
            )
            assert program is not None
            program.save(str(tmp))
        else:
            torch.onnx.export(
                module,
                (example,),
                str(tmp),
                dynamo=False,
                input_names=["image"],
                output_names=["logits"],
                opset_version=opset,
                dynamic_axes={"image": names, "logits": {0: "batch"}},
            )
        model = onnx.load(str(tmp))
        set_onnx_metadata(model, input_spec, output_spec, {**(metadata or {}), "exporter": exporter})
        onnx.save(model, str(tmp))
    return path


def _onnx_predictor(path: Path, runtime: Runtime, threads: int) -> OnnxPredictor | OpenVinoPredictor:
    if runtime == "openvino":
        return OpenVinoPredictor(path, threads=threads)
    return OnnxPredictor(path, threads=threads)


def max_abs_diff(
    module: nn.Module,
    onnx_path: Path,
    inputs: NDArray[np.float32],
    *,
    threads: int = 2,
    runtime: Runtime = "onnxruntime",
) -> float:
    """Largest |PyTorch − ``runtime``| over the logits of ``inputs``."""
    predictor = _onnx_predictor(onnx_path, runtime, threads)
    with torch.inference_mode():
        ref = module.eval()(torch.from_numpy(inputs)).numpy()
    return float(np.abs(predictor.predict_logits(inputs) - ref).max())


class _Calibration:
    """ONNX Runtime calibration reader over batches of preprocessed training images."""

    def __init__(self, name: str, images: NDArray[np.float32], batch: int = 16) -> None:
        self._batches = iter([{name: images[i : i + batch]} for i in range(0, len(images), batch)])

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - part of the reader protocol, unused by MinMax
        return None


def quantize_onnx(fp32: Path, out: Path, mode: QuantMode, *, calibration: NDArray[np.float32] | None = None) -> Path:
    """INT8-quantise ``fp32`` into ``out`` with ONNX Runtime; the aimd metadata is carried over.

    ``static``: QDQ format, per-channel int8 weights, uint8 activations calibrated (min–max) on
    ``calibration``. ``dynamic``: int8 weights, activations quantised at run time.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    source = onnx.load(str(fp32))
    props = {p.key: p.value for p in source.metadata_props}
    with atomic_file(out, suffix=".onnx") as tmp, _quiet_stdout():
        pre = tmp.with_name(tmp.name + ".pre.onnx")
        bare = tmp.with_name(tmp.name + ".bare.onnx")
        try:
            # drop the exporter's intermediate shape annotations (some are recorded at the example batch
            # size) and let ONNX shape inference redo them with the symbolic batch
            stripped = onnx.load(str(fp32))
            del stripped.graph.value_info[:]
            onnx.save(stripped, str(bare))
            quant_pre_process(str(bare), str(pre), skip_symbolic_shape=True)
            if mode == "static":
                if calibration is None or len(calibration) == 0:
                    raise InvalidInputError(
                        "static quantisation needs calibration images",
                        where="calibration",
                        hint="pass training images, or use dynamic quantisation",
                    )
                quantize_static(
                    str(pre),
                    str(tmp),
                    _Calibration(source.graph.input[0].name, calibration),
                    quant_format=QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
            else:
                quantize_dynamic(str(pre), str(tmp), weight_type=QuantType.QInt8)
        finally:
            pre.unlink(missing_ok=True)
            bare.unlink(missing_ok=True)
        model = onnx.load(str(tmp))
        props["aimd.quantization"] = json.dumps(
            {"mode": mode, "weights": "int8", "activations": "uint8" if mode == "static" else "dynamic"}
        )
        del model.metadata_props[:]
        for key, value in props.items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, value
        onnx.save(model, str(tmp))
    return out


def _eval_set(run: Run, data: Path | None) -> tuple[ArraySet, ArraySet]:
    dataset = Path(data) if data else Path(run.record["data"]["dataset"])
    index = load_index(dataset)
    target = run.output_spec.target
    spec = run.input_spec.model_copy(update={"spacing_mm": None})
    val = load_split(index, "val", target, spec, keep_volumes=True, slice_policy="all")
    train = load_split(index, "train", target, spec, case_ids=index.split_ids("train")[:4], slice_policy="all")
    return val, train


def _scored(
    fn: Callable[[NDArray[np.float32]], NDArray[np.float32]], data: ArraySet, spec: OutputSpec
) -> dict[str, Any]:
    scores = evaluate_logits(fn, data, spec)
    return {
        "metric": scores["metric"],
        "value": headline(scores),
        **(
            {"dice_per_class": scores["dice_per_class"]}
            if scores["metric"] == "dice"
            else {"accuracy": scores["accuracy"]}
        ),
    }


def export_run(
    run_dir: str | Path,
    *,
    onnx_fp32: bool = True,
    int8: tuple[QuantMode, ...] = (),
    torchscript: bool = False,
    bundle: bool = False,
    data: Path | None = None,
    threads: int = 2,
    runtimes: tuple[Runtime, ...] = ("onnxruntime", "openvino"),
    calibration_images: int = 64,
    exporter: Literal["dynamo", "torchscript"] = "dynamo",
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Export a run and compare every runtime's accuracy on the validation split.

    Parameters
    ----------
    run_dir:
        Folder of a finished ``aimd model train``.
    onnx_fp32, int8:
        Write ``model.onnx``; and ``model.int8.<mode>.onnx`` for each mode (needs the fp32 file).
    runtimes:
        Runtimes that run (and are scored on) every ONNX file.
    torchscript, bundle:
        Also write ``model.ts`` and a MONAI bundle folder ``bundle/``.
    data:
        dataset.json to evaluate on, if it moved since training.
    calibration_images:
        Training images used to calibrate static quantisation.
    exporter:
        ONNX exporter (see :func:`export_module_onnx`).
    """
    run = load_run(run_dir)
    if int8 and not onnx_fp32:
        raise InvalidInputError("INT8 quantisation starts from the fp32 ONNX model", where="--int8", hint="add --onnx")
    network = run.build_network()
    spec_in, spec_out = run.input_spec, run.output_spec
    val, train = _eval_set(run, data)
    meta = {
        "model": run.info["model"],
        "run_id": run.info.get("run_id"),
        "version": run.info.get("version"),
        "weights_sha256": run.info.get("weights_sha256"),
    }
    with torch.inference_mode():
        eager_fn = _torch_fn(network)
    report: dict[str, Any] = {
        "run": str(run.path),
        "model": run.info["model"],
        "metric_split": "val",
        "exporter": exporter,
        "files": {},
        "runtimes": {},
    }
    report["runtimes"]["torch_fp32"] = _scored(eager_fn, val, spec_out)
    base = report["runtimes"]["torch_fp32"]["value"]
    check_inputs = val.images[: min(len(val), 16)]
    with atomic_dir(run.path / "export", overwrite=True) as tmp:
        if onnx_fp32:
            started = time.perf_counter()
            path = export_module_onnx(network, tmp / "model.onnx", spec_in, spec_out, meta, exporter=exporter)
            report["files"]["onnx"] = {
                "path": "export/model.onnx",
                "sha256": sha256_file(path),
                "seconds": round(time.perf_counter() - started, 2),
            }
            report["onnx_max_abs_diff"] = max_abs_diff(network, path, check_inputs, threads=threads)
            report["onnx_check_items"] = len(check_inputs)
            if "openvino" in runtimes:
                report["openvino_max_abs_diff"] = max_abs_diff(
                    network, path, check_inputs, threads=threads, runtime="openvino"
                )
            _score_runtimes(report, path, "fp32", runtimes, threads, val, spec_out)
            if progress:
                progress(1)
            for mode in int8:
                qpath = quantize_onnx(
                    path, tmp / f"model.int8.{mode}.onnx", mode, calibration=train.images[:calibration_images]
                )
                report["files"][f"onnx_int8_{mode}"] = {
                    "path": f"export/model.int8.{mode}.onnx",
                    "sha256": sha256_file(qpath),
                }
                _score_runtimes(report, qpath, f"int8_{mode}", runtimes, threads, val, spec_out)
                if mode == "static":
                    report["calibration"] = {"split": "train", "images": int(min(len(train), calibration_images))}
                if progress:
                    progress(1)
        if torchscript:
            ts = save_torchscript(network, tmp / "model.ts", spec_in, spec_out, meta)
            report["files"]["torchscript"] = {"path": "export/model.ts", "sha256": sha256_file(ts)}
        if bundle:
            extra = {"models/model.onnx": tmp / "model.onnx"} if onnx_fp32 else {}
            write_monai_bundle(
                network,
                run.network_def(),
                tmp / "bundle",
                spec_in,
                spec_out,
                version=str(run.info.get("version", "0.1.0")),
                task=spec_out.description,
                description=f"aimd {run.info['model']} trained on target {spec_out.target}",
                metrics={f"val_{report['runtimes']['torch_fp32']['metric']}": base or 0.0},
                extra_files=extra,
            )
            report["files"]["monai_bundle"] = {"path": "export/bundle"}
        for scores in report["runtimes"].values():
            value = scores["value"]
            scores["change_vs_torch_fp32"] = None if value is None or base is None else float(value - base)
            scores["relative_change"] = None if value is None or not base else float((value - base) / base)
        atomic_write_json(tmp / "export.json", report)
    _log.info("export.done", run=str(run.path), files=list(report["files"]))
    return report


def _score_runtimes(
    report: dict[str, Any],
    path: Path,
    variant: str,
    runtimes: tuple[Runtime, ...],
    threads: int,
    val: ArraySet,
    spec_out: OutputSpec,
) -> None:
    """Score ``path`` with each runtime into ``report["runtimes"]`` (``onnx_<variant>``, ``openvino_<variant>``)."""
    for runtime in runtimes:
        key = f"{'onnx' if runtime == 'onnxruntime' else runtime}_{variant}"
        try:
            predictor = _onnx_predictor(path, runtime, threads)
        except Exception as err:  # a runtime without kernels for this graph is reported, not fatal
            report.setdefault("unsupported", {})[key] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
            continue
        report["runtimes"][key] = _scored(predictor.predict_logits, val, spec_out)


def _torch_fn(network: nn.Module) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    def run(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return network(torch.from_numpy(np.ascontiguousarray(batch))).numpy()

    return run


__all__ = ["export_module_onnx", "export_run", "max_abs_diff", "quantize_onnx", "set_onnx_metadata"]
