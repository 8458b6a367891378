"""Predictor adapter for a MONAI bundle folder, and a writer that exports aimd models as bundles.

A bundle (MONAI Bundle specification) is a folder with ``configs/metadata.json`` (versions, task,
``network_data_format`` describing inputs and outputs), ``configs/inference.json`` (``network_def``
with a ``_target_`` class and its arguments; optional ``preprocessing`` and ``inferer``) and
``models/model.pt`` (state dict) or ``models/model.ts`` (TorchScript).

Specs are read in this order: an ``aimd`` block in metadata.json (written by aimd) holds the exact
specs; otherwise they are derived from ``network_data_format`` (modality, channels, spatial shape,
``channel_def``), a ``ScaleIntensityRange(d)`` preprocessing step (→ a CT window) and the
``SlidingWindowInferer`` ``roi_size``. Bundle configs may run Python expressions: load only
bundles you trust.

Example
-------
>>> import tempfile, pathlib, numpy as np
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> from aimd.models.networks.unet import UNetB1
>>> net = UNetB1(features=(4, 4, 4, 4, 4), dropout=0.0)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "bundle"
>>> _ = write_monai_bundle(net, {"_target_": "aimd.models.networks.unet.UNetB1",
...                               "features": [4, 4, 4, 4, 4], "dropout": 0.0}, out,
...                        InputSpec(modality="CT", patch_size=(16, 16), size_multiple=16),
...                        OutputSpec(task="segmentation", labels={1: "body"}, activation="sigmoid"))
>>> MonaiBundlePredictor(out).predict(np.zeros((1, 1, 16, 16), np.float32)).shape
(1, 1, 16, 16)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.atomic import atomic_dir
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.models.adapters.torch_module import load_state_dict_file, load_weights
from aimd.models.adapters.torchscript import TorchScriptPredictor
from aimd.models.predictor import BasePredictor
from aimd.models.specs import InputSpec, Intensity, OutputSpec, parse_input_spec, parse_output_spec


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInputError(
            f"bundle file {path.name} is missing",
            where=str(path),
            hint="a MONAI bundle needs configs/metadata.json, configs/inference.json and models/model.pt",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid JSON ({err})", where=str(path), hint="fix the bundle config") from err
    if not isinstance(data, dict):
        raise SchemaError("top level must be a JSON object", where=str(path), hint="fix the bundle config")
    return data


def _find_transform(config: dict[str, Any], suffix: str) -> dict[str, Any] | None:
    """First dict anywhere in ``config`` whose ``_target_`` ends with ``suffix``."""
    stack: list[Any] = [config]
    while stack:
        item = stack.pop(0)
        if isinstance(item, dict):
            if str(item.get("_target_", "")).split(".")[-1] in {suffix, suffix + "d"}:
                return item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _specs_from_format(meta: dict[str, Any], inference: dict[str, Any], where: str) -> tuple[InputSpec, OutputSpec]:
    fmt = meta.get("network_data_format", {})
    try:
        image = next(iter(fmt["inputs"].values()))
        pred = next(iter(fmt["outputs"].values()))
    except (KeyError, StopIteration, AttributeError) as err:
        raise SchemaError(
            "metadata.json lacks network_data_format.inputs/outputs",
            where=where,
            hint="add the tensor format specifiers of the MONAI bundle specification",
        ) from err
    shape = image.get("spatial_shape", [])
    dims = len(shape)
    fixed = [int(s) for s in shape if isinstance(s, int)]
    multiple = 1
    for s in shape:
        m = re.fullmatch(r"\s*(\d+)\s*\*\s*n\s*", str(s))
        if m:
            multiple = int(m.group(1))
    inferer = _find_transform(inference, "SlidingWindowInferer")
    if inferer and "roi_size" in inferer:
        patch = tuple(int(s) for s in inferer["roi_size"])
    elif len(fixed) == dims:
        patch = tuple(fixed)
    else:
        raise SchemaError(
            "cannot tell the patch size: spatial_shape is symbolic and there is no SlidingWindowInferer roi_size",
            where=where,
            hint="add inferer.roi_size to inference.json",
        )
    scale = _find_transform(inference, "ScaleIntensityRange")
    intensity = Intensity()
    if scale and {"a_min", "a_max"} <= scale.keys():
        a_min, a_max = float(scale["a_min"]), float(scale["a_max"])
        intensity = Intensity(method="window", windows=(((a_min + a_max) / 2, a_max - a_min),))
    channels = int(image.get("num_channels", 1))
    if intensity.method == "window" and channels != 1:
        intensity = Intensity()
    spec_in = InputSpec(
        modality=str(image.get("modality", "n/a")),
        dims=dims,
        channels=channels,
        patch_size=patch,
        fixed_size=len(fixed) == dims and not inferer,
        size_multiple=multiple,
        intensity=intensity,
    )
    channel_def = {int(k): str(v) for k, v in (pred.get("channel_def") or {}).items()}
    n_out = int(pred.get("num_channels", len(channel_def) or 1))
    task = "classification" if pred.get("type") == "probabilities" else "segmentation"
    if n_out == 1:
        labels = {1: channel_def.get(1, channel_def.get(0, "foreground"))}
        activation = "sigmoid"
    else:
        labels = {i: channel_def.get(i, f"class_{i}") for i in range(n_out)}
        activation = "softmax"
    spec_out = OutputSpec(task=task, labels=labels, activation=activation, description=str(meta.get("task", "")))
    return spec_in, spec_out


class MonaiBundlePredictor(BasePredictor):
    """Run the network of a MONAI bundle folder.

    Parameters
    ----------
    bundle_dir:
        The bundle root (holding ``configs/`` and ``models/``).
    """

    def __init__(self, bundle_dir: str | Path) -> None:
        root = Path(bundle_dir)
        if not root.is_dir():
            raise InvalidInputError(
                "bundle folder does not exist", where=str(root), hint="pass the folder that holds configs/ and models/"
            )
        meta_path = root / "configs" / "metadata.json"
        meta = _read_json(meta_path)
        inference_path = root / "configs" / "inference.json"
        inference = _read_json(inference_path) if inference_path.is_file() else {}
        if "aimd" in meta:
            spec_in = parse_input_spec(meta["aimd"].get("input_spec", {}), where=f"{meta_path}: aimd.input_spec")
            spec_out = parse_output_spec(meta["aimd"].get("output_spec", {}), where=f"{meta_path}: aimd.output_spec")
        else:
            spec_in, spec_out = _specs_from_format(meta, inference, str(meta_path))
        weights = root / "models" / "model.pt"
        scripted = root / "models" / "model.ts"
        base = {
            "adapter": "monai_bundle",
            "source": str(root),
            "bundle_version": meta.get("version"),
            "task": meta.get("task"),
            "monai_version": meta.get("monai_version"),
        }
        if weights.is_file():
            if "network_def" not in inference:
                raise SchemaError(
                    "inference.json has no network_def",
                    where=str(inference_path),
                    hint="add network_def with the network's _target_ and arguments",
                )
            from monai.bundle import ConfigParser  # monai's import is heavy: load on first use

            parser = ConfigParser()
            parser.read_config(str(inference_path))
            try:
                network = parser.get_parsed_content("network_def", instantiate=True)
            except Exception as err:  # ConfigParser wraps import and constructor errors in many types
                raise SchemaError(
                    f"cannot build network_def: {str(err).splitlines()[0][:160]}",
                    where=f"{inference_path}: network_def",
                    hint="check _target_ is importable and its arguments are right",
                ) from err
            if not isinstance(network, nn.Module):
                raise SchemaError(
                    f"network_def built a {type(network).__name__}, not a torch.nn.Module",
                    where=f"{inference_path}: network_def",
                    hint="point _target_ to a network class",
                )
            load_weights(network, load_state_dict_file(weights), where=str(weights))
            self.module: Any = network.eval()
            base["weights_sha256"] = sha256_file(weights)
        elif scripted.is_file():
            self.module = TorchScriptPredictor(scripted, spec_in, spec_out).module
            base["weights_sha256"] = sha256_file(scripted)
        else:
            raise InvalidInputError(
                "bundle has neither models/model.pt nor models/model.ts",
                where=str(root),
                hint="copy the trained weights into models/",
            )
        super().__init__(spec_in, spec_out, base)

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(batch))
        return out.numpy().astype(np.float32, copy=False)


def write_monai_bundle(
    module: nn.Module,
    network_def: dict[str, Any],
    out_dir: str | Path,
    input_spec: InputSpec,
    output_spec: OutputSpec,
    *,
    version: str = "0.1.0",
    task: str = "",
    description: str = "",
    metrics: dict[str, float] | None = None,
    extra_files: dict[str, str | Path] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``module`` as a MONAI bundle folder (atomically).

    Parameters
    ----------
    module:
        Trained network (its ``state_dict`` goes to ``models/model.pt``).
    network_def:
        ``{"_target_": "package.module.Class", **kwargs}`` that rebuilds ``module``.
    out_dir:
        Bundle root to create.
    input_spec, output_spec:
        Written both as MONAI ``network_data_format`` and, exactly, as an ``aimd`` block.
    extra_files:
        ``{"models/model.onnx": path}`` and the like, copied in.
    """
    import monai

    out = Path(out_dir)
    if "_target_" not in network_def:
        raise InvalidInputError(
            "network_def needs a _target_", where="network_def", hint="pass {'_target_': 'package.module.Class', ...}"
        )
    pred_format = "labels" if output_spec.activation == "softmax" else "segmentation"
    if output_spec.task == "classification":
        pred_format = "classes"
    channel_def = (
        {str(k): v for k, v in output_spec.labels.items()}
        if output_spec.activation == "softmax"
        else {"0": output_spec.labels[max(output_spec.labels)]}
    )
    metadata = {
        "version": version,
        "changelog": {version: "exported by aimd"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": np.__version__,
        "optional_packages_version": {},
        "task": task or output_spec.description or output_spec.target,
        "description": description or task,
        "authors": "aimd",
        "copyright": "see LICENSE of the model provider",
        "intended_use": "research and quality evaluation; not for diagnostic use",
        "eval_metrics": metrics or {},
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield" if input_spec.modality == "CT" else "magnitude",
                    "modality": input_spec.modality,
                    "num_channels": input_spec.channels,
                    "spatial_shape": list(input_spec.patch_size)
                    if input_spec.fixed_size
                    else [f"{input_spec.size_multiple}*n"] * input_spec.dims,
                    "dtype": input_spec.dtype,
                    "value_range": list(input_spec.value_range),
                    "is_patch_data": not input_spec.fixed_size,
                    "channel_def": {str(i): f"channel {i}" for i in range(input_spec.channels)},
                }
            },
            "outputs": {
                "pred": {
                    "type": "probabilities" if output_spec.task == "classification" else "image",
                    "format": pred_format,
                    "num_channels": output_spec.channels,
                    "spatial_shape": [] if output_spec.task == "classification" else list(input_spec.patch_size),
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": not input_spec.fixed_size,
                    "channel_def": channel_def,
                }
            },
        },
        "aimd": {"input_spec": input_spec.model_dump(mode="json"), "output_spec": output_spec.model_dump(mode="json")},
    }
    inference = {
        "network_def": network_def,
        "inferer": {
            "_target_": "SlidingWindowInferer",
            "roi_size": list(input_spec.patch_size),
            "sw_batch_size": 8,
            "overlap": 0.25,
        },
    }
    with atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "configs").mkdir()
        (tmp / "models").mkdir()
        (tmp / "docs").mkdir()
        (tmp / "configs" / "metadata.json").write_text(
            json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (tmp / "configs" / "inference.json").write_text(json.dumps(inference, indent=2) + "\n", encoding="utf-8")
        torch.save(module.state_dict(), tmp / "models" / "model.pt")
        (tmp / "docs" / "README.md").write_text(
            f"# {metadata['task']}\n\n{description}\n\nInput: {input_spec.modality}, {input_spec.channels} "
            f"channel(s), {input_spec.intensity.describe()}.\nOutput: {output_spec.postprocessing()}.\n",
            encoding="utf-8",
        )
        for rel, src in (extra_files or {}).items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return out


__all__ = ["MonaiBundlePredictor", "write_monai_bundle"]
