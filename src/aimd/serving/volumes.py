"""How a served model sees its input: whole volumes for 3-D models, slice batches for 2-D models.

:func:`predict_image` dispatches on the model:

* a predictor with its own ``predict_volume`` (the shipped reference devices: ``device-lesions``
  resamples the CT, runs a 3-D sliding window and post-processes lesion-wise; ``device-nodules``
  decodes boxes) runs that method, with its network calls routed through the service's batcher;
* any other 3-D model (``input_spec.dims == 3``) gets the whole volume as one ``(1, c, z, y, x)``
  input, with 3-D sliding-window inference over its patch size;
* 2-D models keep the slice path of :meth:`~aimd.models.predictor.BasePredictor.predict_volume`
  (axial slices, batched with other requests).

Example
-------
>>> import numpy as np, torch
>>> from aimd.imaging.volume import Volume
>>> from aimd.models.adapters.torch_module import TorchModulePredictor
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> net = torch.nn.Conv3d(1, 1, 1)
>>> spec = InputSpec(modality="CT", dims=3, patch_size=(8, 8, 8))
>>> out = OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid")
>>> pred = predict_image(TorchModulePredictor(net, spec, out), Volume(np.zeros((12, 16, 16)), modality="CT"))
>>> pred.probabilities.shape, pred.record["inference"]["dims"]
((12, 1, 16, 16), 3)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.imaging.volume import Volume
from aimd.models.predictor import BasePredictor, Prediction, activate, label_volume
from aimd.models.preprocess import check_volume, preprocess_volume

Logits = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def has_own_volume_path(predictor: BasePredictor) -> bool:
    """True when the predictor's class defines its own ``predict_volume`` (reference devices)."""
    return type(predictor).predict_volume is not BasePredictor.predict_volume


def routed(predictor: BasePredictor, logits: Logits) -> BasePredictor:
    """A shallow copy of ``predictor`` whose network calls go to ``logits`` (e.g. a batcher)."""
    clone = copy.copy(predictor)
    clone._logits = logits  # type: ignore[method-assign]  # the instance attribute shadows the method
    return clone


def predict_whole_volume(
    predictor: BasePredictor,
    volume: Volume,
    *,
    modality: str | None = None,
    where: str = "input",
    sw_batch_size: int = 4,
    overlap: float = 0.25,
) -> Prediction:
    """A 3-D segmentation model over the whole volume: 3-D sliding window of its patch size."""
    started = time.perf_counter()
    spec, spec_out = predictor.input_spec, predictor.output_spec
    check_volume(volume, spec, modality=modality, where=where)
    unit = preprocess_volume(volume, spec)  # (z, c, y, x)
    inputs = np.ascontiguousarray(unit.transpose(1, 0, 2, 3)[None])  # (1, c, z, y, x)
    logits = predictor._sliding_logits(inputs, sw_batch_size=sw_batch_size, overlap=overlap)
    probs = np.ascontiguousarray(activate(logits, spec_out.activation)[0].transpose(1, 0, 2, 3))  # (z, c, y, x)
    labels = label_volume(probs, spec_out, volume)
    record: dict[str, Any] = {
        "checked": {"modality": spec.modality, "spacing_mm": list(volume.spacing)},
        "intensity": spec.intensity.model_dump(),
        "inference": {
            "dims": 3,
            "whole_volume": True,
            "sliding_window": True,
            "roi": list(spec.patch_size),
            "overlap": overlap,
            "mode": "gaussian",
        },
        "activation": spec_out.activation,
        "postprocessing": spec_out.postprocessing(),
        "seconds": round(time.perf_counter() - started, 4),
    }
    return Prediction(probabilities=probs, labels=labels, record=record)


def predict_image(
    model_predictor: BasePredictor,
    volume: Volume,
    *,
    batched: BasePredictor | None = None,
    modality: str | None = None,
    where: str = "input",
) -> Prediction:
    """Predict ``volume`` the way the model needs it (see the module docs).

    ``batched`` is ``model_predictor`` behind the service's batcher (its ``_logits`` queue the
    network calls); without it the model runs directly.
    """
    logits: Logits = batched._logits if batched is not None else model_predictor._logits
    if has_own_volume_path(model_predictor):
        runner = routed(model_predictor, logits) if batched is not None else model_predictor
        return runner.predict_volume(volume, modality=modality, where=where)
    if model_predictor.input_spec.dims == 3:
        runner = routed(model_predictor, logits) if batched is not None else model_predictor
        return predict_whole_volume(runner, volume, modality=modality, where=where)
    return (batched or model_predictor).predict_volume(volume, modality=modality, where=where)


__all__ = ["has_own_volume_path", "predict_image", "predict_whole_volume", "routed"]
