"""Predictor adapter for an ONNX file run by the OpenVINO CPU runtime (003 §3.3.2).

OpenVINO compiles the same ``.onnx`` file aimd exports — fp32 or the INT8 QDQ file — into fused
CPU kernels. On CPUs without VNNI, ONNX Runtime's INT8 convolutions are no faster than its fp32
ones, while OpenVINO's INT8 kernels still are; that is why aimd offers both runtimes for one file.

The graph is compiled once per input spatial size with a dynamic batch (the spec's patch size
first, other sizes on demand for sliding-window-free whole-image inference), with the
``LATENCY`` hint and a fixed number of inference threads. Specs come from the file's aimd
metadata exactly as for :class:`~aimd.models.adapters.onnx.OnnxPredictor`.

Example
-------
>>> import tempfile, pathlib, numpy as np, torch
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> from aimd.models.export import export_module_onnx
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.onnx"
>>> spec_in = InputSpec(modality="CT", patch_size=(4, 4))
>>> spec_out = OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid")
>>> _ = export_module_onnx(torch.nn.Conv2d(1, 1, 1), path, spec_in, spec_out)  # doctest: +SKIP
>>> OpenVinoPredictor(path).predict(np.zeros((2, 1, 4, 4), np.float32)).shape  # doctest: +SKIP
(2, 1, 4, 4)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.models.adapters.onnx import onnx_file_specs
from aimd.models.predictor import BasePredictor
from aimd.models.specs import InputSpec, OutputSpec


def _openvino() -> Any:
    try:
        import openvino
    except ImportError as err:  # a broken or partial install
        raise InvalidInputError(
            "the OpenVINO runtime is not importable",
            where="runtime=openvino",
            hint="pip install openvino, or use runtime=onnxruntime",
        ) from err
    return openvino


class OpenVinoPredictor(BasePredictor):
    """Run an ONNX model with OpenVINO on CPU.

    Parameters
    ----------
    path:
        The ``.onnx`` file (fp32 or INT8 QDQ).
    input_spec, output_spec:
        Needed only when the file carries no aimd metadata.
    threads:
        Inference threads (the machine's cores at most).
    """

    def __init__(
        self,
        path: str | Path,
        input_spec: InputSpec | None = None,
        output_spec: OutputSpec | None = None,
        *,
        threads: int = 2,
    ) -> None:
        p = Path(path)
        model, input_spec, output_spec, extra = onnx_file_specs(p, input_spec, output_spec)
        ov = _openvino()
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(str(p))
        except Exception as err:  # OpenVINO raises RuntimeError subclasses for unsupported graphs
            raise SchemaError(
                f"OpenVINO cannot read the graph ({str(err).splitlines()[0][:160]})",
                where=str(p),
                hint="run it with runtime=onnxruntime",
            ) from err
        if len(self._model.inputs) != 1:
            raise InvalidInputError(
                f"model has {len(self._model.inputs)} inputs; aimd runs single-input image models",
                where=str(p),
                hint="export a model with one image input",
            )
        rank = self._model.inputs[0].partial_shape.rank
        if rank.is_static and rank.get_length() != input_spec.dims + 2:
            raise SchemaError(
                f"graph input rank {rank.get_length()} does not match the spec's {input_spec.input_shape()}",
                where=str(p),
                hint="re-export the model with aimd",
            )
        self._threads = max(1, int(threads))
        self._compiled: dict[tuple[int, ...], Any] = {}
        self._path = p
        super().__init__(
            input_spec,
            output_spec,
            {
                **extra,
                "adapter": "openvino",
                "source": str(p),
                "weights_sha256": sha256_file(p),
                "threads": self._threads,
                "runtime_version": ov.get_version(),
                "opset": [o.version for o in model.opset_import],
            },
        )
        self._request(tuple(int(s) for s in input_spec.patch_size))

    def _request(self, spatial: tuple[int, ...]) -> Any:
        """The infer request compiled for ``spatial`` (batch left dynamic)."""
        if spatial not in self._compiled:
            model = self._model.clone()
            model.reshape([-1, self.input_spec.channels, *spatial])
            try:
                compiled = self._core.compile_model(
                    model,
                    "CPU",
                    {
                        "PERFORMANCE_HINT": "LATENCY",
                        "INFERENCE_NUM_THREADS": self._threads,
                        "INFERENCE_PRECISION_HINT": "f32",
                    },
                )
            except Exception as err:  # shape inference fails for sizes the graph cannot take
                multiple = self.input_spec.size_multiple
                raise InvalidInputError(
                    f"OpenVINO cannot compile the graph for size {spatial} ({str(err).splitlines()[0][:120]})",
                    where=str(self._path),
                    hint=f"use sizes that are multiples of {multiple}",
                ) from err
            self._compiled[spatial] = compiled.create_infer_request()
        return self._compiled[spatial]

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        request = self._request(tuple(int(s) for s in batch.shape[2:]))
        out = request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.array(out[0], dtype=np.float32, copy=True)


__all__ = ["OpenVinoPredictor"]
