"""The :class:`Predictor` protocol and the shared machinery of every adapter (DESIGN.md).

Every model aimd evaluates or serves — a ``torch.nn.Module``, a TorchScript file, an ONNX file run
by ONNX Runtime, a MONAI bundle — is reached through one protocol: ``input_spec``, ``output_spec``,
``predict(batch)`` and ``metadata``. :class:`BasePredictor` implements it on top of a single
adapter method, ``_logits(batch)``, and adds

* input validation against the spec (dims, channels, dtype, value range, spatial size), with an
  error naming the fix — a wrong input is rejected, never silently resized;
* :meth:`BasePredictor.predict_volume`: check a :class:`Volume` (modality, spacing), apply the
  declared preprocessing, run slice-wise with MONAI's sliding-window inferer when an image is
  larger than the trained patch, then the declared activation and post-processing.

Example
-------
>>> import numpy as np, torch
>>> from aimd.models.adapters.torch_module import TorchModulePredictor
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> net = torch.nn.Conv2d(1, 1, 1)
>>> p = TorchModulePredictor(net, InputSpec(modality="CT", patch_size=(8, 8)),
...                          OutputSpec(task="segmentation", labels={1: "body"}, activation="sigmoid"))
>>> p.predict(np.zeros((2, 1, 8, 8), np.float32)).shape
(2, 1, 8, 8)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.special import expit

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume
from aimd.models.preprocess import check_volume, preprocess_volume
from aimd.models.specs import InputSpec, OutputSpec


@runtime_checkable
class Predictor(Protocol):
    """What every model adapter offers (DESIGN.md "Predictor")."""

    @property
    def input_spec(self) -> InputSpec: ...

    @property
    def output_spec(self) -> OutputSpec: ...

    @property
    def metadata(self) -> dict[str, Any]: ...

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]: ...


@dataclass
class Prediction:
    """Result of :meth:`BasePredictor.predict_volume`.

    ``probabilities``: ``(z, channels, h, w)`` for segmentation, ``(z, channels)`` for
    classification. ``labels``: the post-processed label volume on the input grid (segmentation).
    ``scores``: probability of the positive class per image (classification). ``record``: every
    step applied, with its parameters.
    """

    probabilities: NDArray[np.float32]
    labels: Volume | None = None
    scores: NDArray[np.float32] | None = None
    record: dict[str, Any] = field(default_factory=dict)


def activate(logits: NDArray[np.float32], activation: str) -> NDArray[np.float32]:
    """Apply ``sigmoid`` or channel ``softmax`` (axis 1) to logits.

    Example
    -------
    >>> activate(np.array([[0.0, 0.0]], np.float32), "softmax").tolist()
    [[0.5, 0.5]]
    """
    if activation == "sigmoid":
        return expit(logits).astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


class BasePredictor(ABC):
    """Spec validation, batching, activation and sliding-window inference for every adapter.

    Subclasses implement :meth:`_logits` on a validated float32 batch ``(n, c, *spatial)``.
    """

    max_batch: int = 16

    def __init__(self, input_spec: InputSpec, output_spec: OutputSpec, metadata: dict[str, Any] | None = None) -> None:
        self._input_spec = input_spec
        self._output_spec = output_spec
        self._metadata = dict(metadata or {})

    @property
    def input_spec(self) -> InputSpec:
        """The declared input."""
        return self._input_spec

    @property
    def output_spec(self) -> OutputSpec:
        """The declared output."""
        return self._output_spec

    @property
    def metadata(self) -> dict[str, Any]:
        """Provenance: adapter kind, source path, weights hash, model name..."""
        return self._metadata

    @abstractmethod
    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw network outputs for a validated batch."""

    # ------------------------------------------------------------------ batches
    def validate_batch(self, batch: Any, *, where: str = "batch", check_size: bool = True) -> NDArray[np.float32]:
        """Return ``batch`` as float32 after checking it against the input spec.

        Raises :class:`InvalidInputError` for a wrong number of dims or channels, a non-numeric
        type, values outside the preprocessed range (e.g. raw HU) or a spatial size the network
        cannot take.
        """
        spec = self.input_spec
        if isinstance(batch, torch.Tensor):
            batch = batch.detach().cpu().numpy()
        arr = np.asarray(batch)
        if arr.dtype.kind not in "fiu":
            raise InvalidInputError(
                f"batch has data type {arr.dtype}, expected numbers",
                where=where,
                hint="pass a float32 array (n, channels, h, w)",
            )
        want = f"(n, {spec.channels}, " + ", ".join(str(s) for s in spec.patch_size) + ")"
        if arr.ndim != spec.dims + 2:
            raise InvalidInputError(
                f"batch has {arr.ndim} dims {tuple(arr.shape)}, the model takes {spec.dims + 2}: {want}",
                where=where,
                hint="add batch/channel axes, or call predict_volume() for images",
            )
        if arr.shape[1] != spec.channels:
            raise InvalidInputError(
                f"batch has {arr.shape[1]} channels, the model takes {spec.channels}",
                where=where,
                hint=f"pass shape {want}",
            )
        spatial = tuple(int(s) for s in arr.shape[2:])
        if check_size and spec.fixed_size and spatial != tuple(spec.patch_size):
            raise InvalidInputError(
                f"image size {spatial} differs from the model's fixed size {tuple(spec.patch_size)}",
                where=where,
                hint="call predict_volume(), which applies the declared resize",
            )
        if check_size and not spec.fixed_size and any(s % spec.size_multiple for s in spatial):
            raise InvalidInputError(
                f"image size {spatial} is not a multiple of {spec.size_multiple}",
                where=where,
                hint="call predict_volume(), which pads by sliding window",
            )
        out = arr.astype(np.float32, copy=False)
        if out.size:
            lo, hi = float(out.min()), float(out.max())
            low, high = spec.value_range
            if not np.isfinite([lo, hi]).all():
                raise InvalidInputError(
                    "batch holds NaN or infinite values", where=where, hint="clean the image before inference"
                )
            if lo < low - 1e-3 or hi > high + 1e-3:
                raise InvalidInputError(
                    f"values span [{lo:.4g}, {hi:.4g}] but the model takes preprocessed values in "
                    f"[{low:g}, {high:g}] ({spec.intensity.describe()})",
                    where=where,
                    hint="call predict_volume(), which applies the declared preprocessing",
                )
        return np.ascontiguousarray(out)

    def predict_logits(self, batch: Any) -> NDArray[np.float32]:
        """Validated raw outputs, computed in chunks of :attr:`max_batch`."""
        arr = self.validate_batch(batch)
        if arr.shape[0] == 0:
            raise InvalidInputError("batch is empty", where="batch", hint="pass at least one image")
        parts = [self._logits(arr[i : i + self.max_batch]) for i in range(0, arr.shape[0], self.max_batch)]
        return np.concatenate(parts, axis=0).astype(np.float32, copy=False)

    def predict(self, batch: Any) -> NDArray[np.float32]:
        """Probabilities (after the declared activation) for a preprocessed batch."""
        return activate(self.predict_logits(batch), self.output_spec.activation)

    # ------------------------------------------------------------------ volumes
    def _sliding_logits(
        self, inputs: NDArray[np.float32], *, sw_batch_size: int, overlap: float
    ) -> NDArray[np.float32]:
        from monai.inferers import sliding_window_inference  # monai's import is heavy: load on first use

        roi = tuple(int(s) for s in self.input_spec.patch_size)

        def run(window: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(self._logits(np.ascontiguousarray(window.numpy(), dtype=np.float32)))

        with torch.inference_mode():
            out = sliding_window_inference(
                torch.from_numpy(inputs),
                roi_size=roi,
                sw_batch_size=sw_batch_size,
                predictor=run,
                overlap=overlap,
                mode="gaussian",
            )
        assert isinstance(out, torch.Tensor)
        return out.numpy().astype(np.float32)

    def predict_volume(
        self,
        volume: Volume,
        *,
        modality: str | None = None,
        where: str = "input",
        sw_batch_size: int = 8,
        overlap: float = 0.25,
    ) -> Prediction:
        """Check, preprocess and predict a whole image or volume.

        Segmentation models run slice by slice (axial) with sliding-window inference over the trained
        patch size; classification models take each declared-resized image whole.

        Parameters
        ----------
        volume:
            The image, in raw units (HU for CT, stored values for X-ray).
        modality:
            Modality to assume when the image carries none (NIfTI).
        where:
            Name used in error messages (usually the file path).
        sw_batch_size, overlap:
            Sliding-window batch size and window overlap.
        """
        started = time.perf_counter()
        check_volume(volume, self.input_spec, modality=modality, where=where)
        inputs = preprocess_volume(volume, self.input_spec)
        spec_out = self.output_spec
        record: dict[str, Any] = {
            "checked": {"modality": self.input_spec.modality, "spacing_mm": list(volume.spacing)},
            "intensity": self.input_spec.intensity.model_dump(),
            "resize_to": list(self.input_spec.resize_to) if self.input_spec.resize_to else None,
        }
        if spec_out.task == "classification" or self.input_spec.fixed_size:
            logits = self.predict_logits(inputs)
            record["inference"] = "whole image"
        else:
            inputs = self.validate_batch(inputs, where=where, check_size=False)
            logits = self._sliding_logits(inputs, sw_batch_size=sw_batch_size, overlap=overlap)
            record["inference"] = {
                "sliding_window": True,
                "roi": list(self.input_spec.patch_size),
                "overlap": overlap,
                "mode": "gaussian",
            }
        probs = activate(logits, spec_out.activation)
        record["activation"] = spec_out.activation
        record["postprocessing"] = spec_out.postprocessing()
        if spec_out.task == "classification":
            pos = spec_out.positive_class if spec_out.activation == "softmax" else 0
            scores = probs[:, pos].astype(np.float32)
            record["seconds"] = round(time.perf_counter() - started, 4)
            return Prediction(probabilities=probs, scores=scores, record=record)
        labels = label_volume(probs, spec_out, volume)
        record["seconds"] = round(time.perf_counter() - started, 4)
        return Prediction(probabilities=probs, labels=labels, record=record)


def label_volume(probs: NDArray[np.float32], spec_out: OutputSpec, volume: Volume) -> Volume:
    """Labels of ``(z, channels, h, w)`` probabilities (argmax, or the threshold for sigmoid) on ``volume``'s grid."""
    if spec_out.activation == "softmax":
        label_arr = np.argmax(probs, axis=1).astype(np.uint8)
    else:
        label_arr = (probs[:, 0] >= spec_out.threshold).astype(np.uint8)
    return Volume(
        label_arr,
        spacing=volume.spacing,
        origin=volume.origin,
        direction=volume.direction,
        modality="SEG",
        metadata={"labels": {str(k): v for k, v in spec_out.labels.items()}},
    )


__all__ = ["BasePredictor", "Prediction", "Predictor", "activate", "label_volume"]
