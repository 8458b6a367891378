"""The models a running service offers: ``NAME=PATH[@VERSION]``, several versions per name, one default.

PATH is anything ``aimd evaluate --model`` accepts (training-run folder, ONNX, TorchScript, MONAI
bundle), opened through :func:`aimd.models.load_predictor`. Each loaded model records its file hash
(SHA-256 of the file, or of the folder tree), load time, adapter/runtime and input/output specs — the
model-version record of 001 §10.1.6 that every result and audit entry carries.

Example
-------
>>> parse_model_arg("lung=/models/lung.onnx@2.1")
('lung', '/models/lung.onnx', '2.1')
>>> parse_model_arg("lung=/models/lung.onnx")
('lung', '/models/lung.onnx', None)
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file, sha256_tree
from aimd.models.predictor import BasePredictor
from aimd.serving.errors import NotFoundError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_model_arg(text: str) -> tuple[str, str, str | None]:
    """Split ``NAME=PATH[@VERSION]``; an :class:`InvalidInputError` names ``--model`` and the form."""
    if "=" not in text:
        raise InvalidInputError(
            f"{text!r} has no NAME=", where="--model", hint="write --model NAME=PATH or NAME=PATH@VERSION"
        )
    name, rest = text.split("=", 1)
    version = None
    if "@" in rest and "/" not in rest.rsplit("@", 1)[1]:
        rest, version = rest.rsplit("@", 1)
    if not _NAME.match(name):
        raise InvalidInputError(
            f"model name {name!r} must be letters, digits, '.', '_' or '-'",
            where="--model",
            hint="write --model NAME=PATH or NAME=PATH@VERSION",
        )
    if version is not None and not _NAME.match(version):
        raise InvalidInputError(
            f"version {version!r} must be letters, digits, '.', '_' or '-'",
            where="--model",
            hint="write --model NAME=PATH@1.0",
        )
    if not rest:
        raise InvalidInputError(
            f"{text!r} has no PATH", where="--model", hint="write --model NAME=PATH or NAME=PATH@VERSION"
        )
    return name, rest, version


@dataclass
class LoadedModel:
    """One model version the service runs."""

    name: str
    version: str
    path: Path
    predictor: BasePredictor
    sha256: str
    load_seconds: float
    runtime: str
    default: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def gradients(self) -> bool:
        """True when the network is an eager PyTorch module (Grad-CAM possible; TorchScript is not)."""
        from aimd.models.adapters.torch_module import TorchModulePredictor

        return isinstance(self.predictor, TorchModulePredictor)

    def public(self) -> dict[str, Any]:
        """Metadata as the KServe v2 model metadata route answers it."""
        spec_in, spec_out = self.predictor.input_spec, self.predictor.output_spec
        return {
            "name": self.name,
            "versions": [self.version],
            "version": self.version,
            "platform": self.runtime,
            "default": self.default,
            "sha256": self.sha256,
            "path": str(self.path),
            "load_seconds": round(self.load_seconds, 4),
            "inputs": [
                {
                    "name": "image",
                    "datatype": "FP32",
                    "shape": spec_in.input_shape(),
                    "spec": spec_in.model_dump(mode="json"),
                }
            ],
            "outputs": [
                {
                    "name": "probabilities",
                    "datatype": "FP32",
                    "shape": [-1, spec_out.channels, *([-1] * spec_in.dims)]
                    if spec_out.task == "segmentation"
                    else [-1, spec_out.channels],
                    "spec": spec_out.model_dump(mode="json"),
                }
            ],
            "description": self.extra.get("description"),
            "runtime_choice": self.extra.get("runtime_choice"),
        }


def fastest_runtime(path: Path, *, threads: int = 2, repeats: int = 5) -> tuple[str, dict[str, float]]:
    """For an ONNX file: the runtime (ONNX Runtime or OpenVINO) with the lower median time per batch.

    Other model kinds have one runtime (``onnxruntime`` is returned and ignored by their adapters).
    Both runtimes run the same zero batch of the model's input shape, after one warm-up call.
    """
    import statistics

    import numpy as np

    from aimd.models.adapters import RUNTIMES, load_predictor

    if path.suffix.lower() != ".onnx":
        return "onnxruntime", {}
    timings: dict[str, float] = {}
    for runtime in RUNTIMES:
        try:
            predictor = load_predictor(path, threads=threads, runtime=runtime)
        except Exception:  # a runtime that cannot compile the graph is simply not a candidate
            continue
        batch = np.zeros(predictor.input_spec.input_shape(batch=4), np.float32)
        predictor._logits(batch)
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            predictor._logits(batch)
            runs.append(time.perf_counter() - started)
        timings[runtime] = round(statistics.median(runs), 6)
    if not timings:
        raise InvalidInputError(
            "no runtime can run this ONNX file", where=str(path), hint="re-export the model with aimd model export"
        )
    return min(timings, key=lambda k: timings[k]), timings


def model_hash(path: Path) -> str:
    """SHA-256 of a model file, or of a model folder's tree."""
    return sha256_tree(path) if path.is_dir() else sha256_file(path)


def shipped_weights(path: str | Path, predictor: BasePredictor) -> Path | None:
    """The weights file of a shipped reference device named by ``path`` (``device-lesions``), else None.

    Example
    -------
    >>> shipped_weights("/models/lung.onnx", None) is None
    True
    """
    from aimd.models.reference.shipped import RECIPES

    if str(path) not in RECIPES or Path(path).exists():
        return None
    return Path(str(predictor.metadata["source"]))


def _version_of(predictor: BasePredictor, digest: str) -> str:
    """The version a model is served as when ``NAME=PATH`` gives none.

    A shipped device is its weights *and* its run record (the operating point lives in the record), so
    its version names both: a new operating point on the same weights is a new version.
    """
    meta = predictor.metadata
    for key in ("version", "model_version"):
        if meta.get(key):
            return str(meta[key])
    record = meta.get("run_record")
    if record and Path(str(record)).is_file():
        return f"{digest[:12]}-{sha256_file(Path(str(record)))[:8]}"
    return digest[:12]


class ModelRegistry:
    """Thread-safe map ``name → {version → LoadedModel}`` with a default version per name."""

    def __init__(self, *, threads: int = 2) -> None:
        self._models: dict[str, dict[str, LoadedModel]] = {}
        self._default: dict[str, str] = {}
        self._lock = threading.Lock()
        self.threads = threads

    def load(
        self,
        name: str,
        path: str | Path,
        version: str | None = None,
        *,
        runtime: str = "onnxruntime",
        default: bool | None = None,
    ) -> LoadedModel:
        """Open ``path`` and register it as ``name@version`` (the first version of a name is the default)."""
        from aimd.models.adapters import load_predictor

        p = Path(path)
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if runtime == "auto":
            runtime, timings = fastest_runtime(p, threads=self.threads)
        predictor = load_predictor(path, threads=self.threads, runtime=runtime)
        p = shipped_weights(path, predictor) or p
        model = self.add(
            name, predictor, p, version, runtime=runtime, default=default, load_seconds=time.perf_counter() - started
        )
        if timings:
            model.extra["runtime_choice"] = {"chosen": runtime, "seconds_per_batch": timings}
        model.extra.update(source=str(path), runtime=runtime)  # how inference workers open it again
        return model

    def add(
        self,
        name: str,
        predictor: BasePredictor,
        path: str | Path,
        version: str | None = None,
        *,
        runtime: str = "onnxruntime",
        default: bool | None = None,
        load_seconds: float = 0.0,
    ) -> LoadedModel:
        """Register an already opened predictor whose weights live at ``path``."""
        p = Path(path)
        seconds = load_seconds
        digest = model_hash(p)
        version = version or _version_of(predictor, digest)
        adapter = str(predictor.metadata.get("adapter", "unknown"))
        kind = runtime if adapter == "onnx" else adapter
        loaded = LoadedModel(name, version, p, predictor, digest, seconds, kind)
        with self._lock:
            versions = self._models.setdefault(name, {})
            if version in versions:
                raise InvalidInputError(
                    f"model {name}@{version} is already loaded",
                    where="--model",
                    hint="give each version of a name its own @VERSION",
                )
            versions[version] = loaded
            if default or name not in self._default:
                self._default[name] = version
            for v in versions.values():
                v.default = v.version == self._default[name]
        return loaded

    def unload(self, name: str, version: str | None = None) -> LoadedModel:
        """Remove one version (the default when ``version`` is None)."""
        with self._lock:
            model = self._get(name, version)
            del self._models[name][model.version]
            if not self._models[name]:
                del self._models[name], self._default[name]
            elif self._default[name] == model.version:
                self._default[name] = sorted(self._models[name])[-1]
                self._models[name][self._default[name]].default = True
        return model

    def _get(self, name: str, version: str | None) -> LoadedModel:
        if name not in self._models:
            raise NotFoundError(
                f"unknown model {name!r}", where="model", hint=f"use one of {sorted(self._models)} (GET /v2/models)"
            )
        versions = self._models[name]
        v = version or self._default[name]
        if v not in versions:
            raise NotFoundError(
                f"model {name!r} has no version {v!r}", where="version", hint=f"use one of {sorted(versions)}"
            )
        return versions[v]

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        """The model ``name`` at ``version`` (default version when None); :class:`NotFoundError` otherwise."""
        with self._lock:
            return self._get(name, version)

    def all(self) -> list[LoadedModel]:
        """Every loaded model version, sorted by name and version."""
        with self._lock:
            return [m for name in sorted(self._models) for _, m in sorted(self._models[name].items())]


__all__ = ["LoadedModel", "ModelRegistry", "fastest_runtime", "model_hash", "parse_model_arg", "shipped_weights"]
