"""aimd.models — reference networks, Predictor adapters, training, export and model description.

* :class:`Predictor` protocol with adapters for ``nn.Module``, TorchScript, ONNX Runtime and MONAI
  bundles (:func:`load_predictor`), input validation and sliding-window inference.
* Reference models (:data:`ZOO`): ``unet-b1`` (000 App. B), ``unet-small``, ``vit-small``,
  ``vit-b16-512`` (003 §2.1.1).
* :func:`train`: pre-training, full / LoRA fine-tuning, distillation on phantom data (003 §3.2,
  000 §4.4) with a complete training record.
* :func:`export_run`: ONNX with dynamic batch, INT8 quantisation, TorchScript, MONAI bundle
  (003 §3.3), each checked against PyTorch.
* :func:`describe_model`: the 000 §4 model description as Markdown, HTML or JSON.
* Reference devices with shipped weights (:func:`load_reference`): ``device-lesions`` (CT lesion
  segmentation) and ``device-nodules`` (radiograph nodule detection), see :mod:`aimd.models.reference`.
* :func:`run_model_demo`: pre-train → fine-tune (full and LoRA) → export → describe.

Names are imported on first use (PEP 562), so importing one light module — the specs, the zoo —
does not load MONAI, ONNX Runtime or peft.

Example
-------
>>> from aimd.models import ZOO
>>> sorted(ZOO)
['unet-b1', 'unet-small', 'vit-b16-512', 'vit-small']
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ArraySet": "aimd.models.data",
    "Augmenter": "aimd.models.augment",
    "BasePredictor": "aimd.models.predictor",
    "DatasetIndex": "aimd.models.data",
    "DistillationLoss": "aimd.models.distill",
    "InputSpec": "aimd.models.specs",
    "Intensity": "aimd.models.specs",
    "MonaiBundlePredictor": "aimd.models.adapters",
    "OnnxPredictor": "aimd.models.adapters",
    "OpenVinoPredictor": "aimd.models.adapters",
    "OutputSpec": "aimd.models.specs",
    "PatchEmbed": "aimd.models.networks",
    "Prediction": "aimd.models.predictor",
    "Predictor": "aimd.models.predictor",
    "RandomElastic": "aimd.models.augment",
    "RandomFlip": "aimd.models.augment",
    "RandomIntensityShift": "aimd.models.augment",
    "RandomNoise": "aimd.models.augment",
    "Run": "aimd.models.runs",
    "TARGETS": "aimd.models.targets",
    "Target": "aimd.models.targets",
    "TaskLoss": "aimd.models.losses",
    "TorchModulePredictor": "aimd.models.adapters",
    "TorchScriptPredictor": "aimd.models.adapters",
    "TrainConfig": "aimd.models.config",
    "UNetB1": "aimd.models.networks",
    "ViTClassifier": "aimd.models.networks",
    "ZOO": "aimd.models.zoo",
    "ZooEntry": "aimd.models.zoo",
    "apply_lora": "aimd.models.lora",
    "build_network": "aimd.models.zoo",
    "describe_model": "aimd.models.describe",
    "evaluate_logits": "aimd.models.evaluate",
    "export_module_onnx": "aimd.models.export",
    "export_run": "aimd.models.export",
    "get_entry": "aimd.models.zoo",
    "get_target": "aimd.models.targets",
    "load_index": "aimd.models.data",
    "load_predictor": "aimd.models.adapters",
    "load_reference": "aimd.models.reference.shipped",
    "load_run": "aimd.models.runs",
    "load_split": "aimd.models.data",
    "make_config": "aimd.models.config",
    "merge_lora": "aimd.models.lora",
    "quantize_onnx": "aimd.models.export",
    "render": "aimd.models.describe",
    "run_model_demo": "aimd.models.demo",
    "save_torchscript": "aimd.models.adapters",
    "score_classification": "aimd.models.evaluate",
    "score_segmentation": "aimd.models.evaluate",
    "soft_loss": "aimd.models.distill",
    "train": "aimd.models.training",
    "write_description": "aimd.models.describe",
    "write_monai_bundle": "aimd.models.adapters",
}

__all__ = [
    "TARGETS",
    "ZOO",
    "ArraySet",
    "Augmenter",
    "BasePredictor",
    "DatasetIndex",
    "DistillationLoss",
    "InputSpec",
    "Intensity",
    "MonaiBundlePredictor",
    "OnnxPredictor",
    "OpenVinoPredictor",
    "OutputSpec",
    "PatchEmbed",
    "Prediction",
    "Predictor",
    "RandomElastic",
    "RandomFlip",
    "RandomIntensityShift",
    "RandomNoise",
    "Run",
    "Target",
    "TaskLoss",
    "TorchModulePredictor",
    "TorchScriptPredictor",
    "TrainConfig",
    "UNetB1",
    "ViTClassifier",
    "ZooEntry",
    "apply_lora",
    "build_network",
    "describe_model",
    "evaluate_logits",
    "export_module_onnx",
    "export_run",
    "get_entry",
    "get_target",
    "load_index",
    "load_predictor",
    "load_reference",
    "load_run",
    "load_split",
    "make_config",
    "merge_lora",
    "quantize_onnx",
    "render",
    "run_model_demo",
    "save_torchscript",
    "score_classification",
    "score_segmentation",
    "soft_loss",
    "train",
    "write_description",
    "write_monai_bundle",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aimd.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
