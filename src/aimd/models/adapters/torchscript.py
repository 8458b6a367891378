"""Predictor adapter for a TorchScript file (``torch.jit.save``).

aimd writes its specs into the file itself (an extra file ``aimd_specs.json`` inside the archive),
so a TorchScript model it exported carries its input and output declaration; for other files the
specs are passed explicitly.

Example
-------
>>> import tempfile, pathlib, numpy as np, torch
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> path = pathlib.Path(tempfile.mkdtemp()) / "m.ts"
>>> spec_in = InputSpec(modality="CT", patch_size=(4, 4))
>>> spec_out = OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid")
>>> _ = save_torchscript(torch.nn.Conv2d(1, 1, 1), path, spec_in, spec_out)
>>> TorchScriptPredictor(path).predict(np.zeros((1, 1, 4, 4), np.float32)).shape
(1, 1, 4, 4)
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.atomic import atomic_file
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.models.predictor import BasePredictor
from aimd.models.specs import InputSpec, OutputSpec, parse_input_spec, parse_output_spec

SPEC_FILE = "aimd_specs.json"


def save_torchscript(
    module: nn.Module,
    path: str | Path,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Trace ``module`` on a zero batch of the spec's shape and save it with the specs embedded."""
    path = Path(path)
    example = torch.zeros(input_spec.input_shape(batch=1))
    payload = json.dumps(
        {
            "input_spec": input_spec.model_dump(mode="json"),
            "output_spec": output_spec.model_dump(mode="json"),
            "metadata": metadata or {},
        },
        sort_keys=True,
        default=str,
    )
    module = module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(module, example)
        with atomic_file(path, suffix=".ts") as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={SPEC_FILE: payload.encode()})
    return path


class TorchScriptPredictor(BasePredictor):
    """Run a TorchScript module on CPU.

    Parameters
    ----------
    path:
        The ``.ts``/``.pt`` TorchScript archive.
    input_spec, output_spec:
        Needed only when the file carries no embedded ``aimd_specs.json``.
    """

    def __init__(
        self, path: str | Path, input_spec: InputSpec | None = None, output_spec: OutputSpec | None = None
    ) -> None:
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError(
                "TorchScript file does not exist", where=str(p), hint="pass a file written by torch.jit.save"
            )
        extra = {SPEC_FILE: ""}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = torch.jit.load(str(p), map_location="cpu", _extra_files=extra)
        except (RuntimeError, ValueError) as err:
            raise InvalidInputError(
                f"not a TorchScript archive ({str(err).splitlines()[0][:120]})",
                where=str(p),
                hint="pass a file written by torch.jit.save, or use the torch adapter for a plain state dict",
            ) from err
        embedded: dict[str, Any] = {}
        if extra[SPEC_FILE]:
            try:
                embedded = json.loads(extra[SPEC_FILE])
            except json.JSONDecodeError as err:
                raise SchemaError(
                    "embedded aimd_specs.json is not JSON",
                    where=f"{p}:{SPEC_FILE}",
                    hint="re-export the model with aimd",
                ) from err
        if input_spec is None:
            if "input_spec" not in embedded:
                raise SchemaError(
                    "file carries no input spec",
                    where=str(p),
                    hint="pass input_spec=InputSpec(...) (CLI: --spec spec.json)",
                )
            input_spec = parse_input_spec(embedded["input_spec"], where=f"{p}:{SPEC_FILE}")
        if output_spec is None:
            if "output_spec" not in embedded:
                raise SchemaError(
                    "file carries no output spec",
                    where=str(p),
                    hint="pass output_spec=OutputSpec(...) (CLI: --spec spec.json)",
                )
            output_spec = parse_output_spec(embedded["output_spec"], where=f"{p}:{SPEC_FILE}")
        meta = {
            "adapter": "torchscript",
            "source": str(p),
            "weights_sha256": sha256_file(p),
            **embedded.get("metadata", {}),
        }
        meta["adapter"] = "torchscript"
        super().__init__(input_spec, output_spec, meta)
        self.module = module.eval()

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch))
        return out.numpy().astype(np.float32, copy=False)


__all__ = ["SPEC_FILE", "TorchScriptPredictor", "save_torchscript"]
