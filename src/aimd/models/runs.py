"""Run folders: what a training run leaves behind, and how to rebuild its model.

Layout::

    RUN/run.json        model (zoo name, factory, arguments), input/output specs, settings, lineage
    RUN/record.json     training record: per-epoch losses/metrics/lr/time, hardware, data hashes, splits
    RUN/best.pt         state dict of the best epoch (LoRA adapters merged in)
    RUN/lora_adapter.pt LoRA adapter and head weights alone (LoRA runs)
    RUN/loss.png, RUN/metric.png   training curves
    RUN/export/         ONNX / INT8 / TorchScript / MONAI bundle written by ``aimd model export``

Example
-------
>>> try:
...     load_run("/nonexistent-run")
... except InvalidInputError as err:
...     print(err.message)
run folder does not exist
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.models.adapters.torch_module import TorchModulePredictor, load_state_dict_file, load_weights
from aimd.models.specs import InputSpec, OutputSpec, parse_input_spec, parse_output_spec
from aimd.models.zoo import import_factory

RUN_FORMAT = "aimd-model-run"
RUN_FILE = "run.json"
RECORD_FILE = "record.json"
WEIGHTS_FILE = "best.pt"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid JSON ({err})", where=str(path), hint="re-run training") from err
    if not isinstance(data, dict):
        raise SchemaError("top level must be an object", where=str(path), hint="re-run training")
    return data


@dataclass
class Run:
    """A finished training run folder."""

    path: Path
    info: dict[str, Any]

    @property
    def input_spec(self) -> InputSpec:
        """The model's input spec."""
        return parse_input_spec(self.info["input_spec"], where=f"{self.path / RUN_FILE}: input_spec")

    @property
    def output_spec(self) -> OutputSpec:
        """The model's output spec."""
        return parse_output_spec(self.info["output_spec"], where=f"{self.path / RUN_FILE}: output_spec")

    @property
    def weights(self) -> Path:
        """The best-epoch state dict."""
        return self.path / self.info.get("weights", WEIGHTS_FILE)

    @property
    def record(self) -> dict[str, Any]:
        """The training record (record.json)."""
        path = self.path / RECORD_FILE
        if not path.is_file():
            raise InvalidInputError("training record is missing", where=str(path), hint="re-run training")
        return _read(path)

    def network_def(self) -> dict[str, Any]:
        """MONAI-style ``{"_target_": ..., **kwargs}`` that rebuilds the network."""
        module, _, attr = self.info["factory"].partition(":")
        return {"_target_": f"{module}.{attr}", **self.info["model_kwargs"]}

    def build_network(self, *, load: bool = True) -> nn.Module:
        """The network, with the best weights loaded (checked against the recorded SHA-256)."""
        factory = import_factory(self.info["factory"], where=f"{self.path / RUN_FILE}: factory")
        network = factory(**self.info["model_kwargs"])
        if load:
            recorded = self.info.get("weights_sha256")
            if recorded and self.weights.is_file() and sha256_file(self.weights) != recorded:
                from aimd.core.errors import IntegrityError

                raise IntegrityError(
                    "weights differ from the SHA-256 recorded in run.json",
                    where=str(self.weights),
                    hint="restore best.pt or re-run training",
                )
            load_weights(network, load_state_dict_file(self.weights), where=str(self.weights))
        return network.eval()

    def predictor(self) -> TorchModulePredictor:
        """A :class:`TorchModulePredictor` on the best weights."""
        meta = {
            "source": str(self.path),
            "model": self.info["model"],
            "run_id": self.info.get("run_id"),
            "weights_sha256": self.info.get("weights_sha256"),
            "version": self.info.get("version"),
        }
        return TorchModulePredictor(self.build_network(), self.input_spec, self.output_spec, meta)


def is_run(path: str | Path) -> bool:
    """Whether ``path`` is a folder holding run.json."""
    return (Path(path) / RUN_FILE).is_file()


def load_run(path: str | Path) -> Run:
    """Open a run folder and check run.json has what rebuilding the model needs."""
    p = Path(path)
    if not p.is_dir():
        raise InvalidInputError(
            "run folder does not exist", where=str(p), hint="pass the --out folder of aimd model train"
        )
    run_file = p / RUN_FILE
    if not run_file.is_file():
        raise InvalidInputError(
            "folder holds no run.json", where=str(p), hint="pass the --out folder of a finished aimd model train"
        )
    info = _read(run_file)
    if info.get("format") != RUN_FORMAT:
        raise SchemaError(
            f"format is {info.get('format')!r}, expected {RUN_FORMAT!r}",
            where=str(run_file),
            hint="pass a run folder written by aimd model train",
        )
    for key in ("model", "factory", "model_kwargs", "input_spec", "output_spec"):
        if key not in info:
            raise SchemaError(f"missing field {key!r}", where=str(run_file), hint="re-run training")
    return Run(p, info)


__all__ = ["RECORD_FILE", "RUN_FILE", "RUN_FORMAT", "WEIGHTS_FILE", "Run", "is_run", "load_run"]
