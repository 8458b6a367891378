"""Predictor adapter for a ``torch.nn.Module`` — given directly, or as an import path plus weights.

Example
-------
>>> import numpy as np, torch
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> p = TorchModulePredictor(torch.nn.Conv2d(1, 2, 1), InputSpec(modality="CT", patch_size=(4, 4)),
...                          OutputSpec(task="segmentation", labels={0: "bg", 1: "fg"}, activation="softmax"))
>>> p.predict(np.zeros((1, 1, 4, 4), np.float32)).sum(axis=1).round(3).max()
np.float32(1.0)
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.models.predictor import BasePredictor
from aimd.models.specs import InputSpec, OutputSpec
from aimd.models.zoo import import_factory


def load_state_dict_file(path: str | Path, *, where: str | None = None) -> dict[str, torch.Tensor]:
    """Read a PyTorch state dict (``torch.save``), tensors only (``weights_only=True``).

    A checkpoint dict holding the weights under ``state_dict`` or ``model`` is unwrapped.
    """
    p = Path(path)
    where = where or str(p)
    if not p.is_file():
        raise InvalidInputError(
            "weights file does not exist",
            where=where,
            hint="pass the best.pt of a training run or a torch.save()d state dict",
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        raise InvalidInputError(
            f"not a readable PyTorch weights file ({type(err).__name__})",
            where=where,
            hint="pass a file written by torch.save(model.state_dict(), path)",
        ) from err
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    elif isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidInputError(
            "file holds no state dict of tensors", where=where, hint="save with torch.save(model.state_dict(), path)"
        )
    return obj


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], *, where: str) -> None:
    """Load ``state`` strictly into ``module``; mismatches name the first differing keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shape:
        detail = "; ".join(
            f"{label}: {keys[:3]}"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", shape))
            if keys
        )
        raise InvalidInputError(
            f"weights do not fit {type(module).__name__} ({detail})",
            where=where,
            hint="pass the architecture and arguments the weights were trained with",
        )
    module.load_state_dict(state)


class TorchModulePredictor(BasePredictor):
    """Run an ``nn.Module`` in eval mode under ``torch.inference_mode`` on CPU.

    Parameters
    ----------
    module:
        The network; it must return logits ``(n, channels, ...)``.
    input_spec, output_spec:
        Its declared input and output.
    metadata:
        Provenance added to ``metadata`` (``adapter`` is set to ``torch``).
    """

    def __init__(
        self, module: nn.Module, input_spec: InputSpec, output_spec: OutputSpec, metadata: dict[str, Any] | None = None
    ) -> None:
        super().__init__(input_spec, output_spec, {"adapter": "torch", **(metadata or {})})
        self.module = module.eval()

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch))
        if not isinstance(out, torch.Tensor):
            raise InvalidInputError(
                f"model returned {type(out).__name__}, expected a tensor of logits",
                where=str(self.metadata.get("source", "module")),
                hint="wrap the model so forward() returns one tensor",
            )
        return out.detach().numpy().astype(np.float32, copy=False)

    @classmethod
    def from_import_path(
        cls,
        import_path: str,
        weights: str | Path,
        input_spec: InputSpec,
        output_spec: OutputSpec,
        kwargs: dict[str, Any] | None = None,
    ) -> TorchModulePredictor:
        """Build ``package.module:Class(**kwargs)`` and load ``weights`` into it.

        Example
        -------
        >>> import tempfile, pathlib, torch
        >>> from aimd.models.specs import InputSpec, OutputSpec
        >>> w = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
        >>> torch.save(torch.nn.Conv2d(1, 1, 1).state_dict(), w)
        >>> p = TorchModulePredictor.from_import_path(
        ...     "torch.nn:Conv2d", w, InputSpec(modality="CT"),
        ...     OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid"),
        ...     {"in_channels": 1, "out_channels": 1, "kernel_size": 1})
        >>> p.metadata["adapter"]
        'torch'
        """
        factory = import_factory(import_path, where="import path")
        try:
            module = factory(**(kwargs or {}))
        except (TypeError, ValueError) as err:
            raise InvalidInputError(
                f"cannot build {import_path} with {kwargs}: {err}",
                where="kwargs",
                hint="pass the constructor arguments the weights were trained with",
            ) from err
        if not isinstance(module, nn.Module):
            raise InvalidInputError(
                f"{import_path} built a {type(module).__name__}, not a torch.nn.Module",
                where="import path",
                hint="point to an nn.Module class or factory",
            )
        load_weights(module, load_state_dict_file(weights), where=str(weights))
        meta = {
            "source": str(weights),
            "import_path": import_path,
            "kwargs": kwargs or {},
            "weights_sha256": sha256_file(weights),
        }
        return cls(module, input_spec, output_spec, meta)


__all__ = ["TorchModulePredictor", "load_state_dict_file", "load_weights"]
