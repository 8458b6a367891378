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

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.models.data": ["ArraySet", "DatasetIndex", "load_index", "load_split"],
        "aimd.models.augment": ["Augmenter", "RandomElastic", "RandomFlip", "RandomIntensityShift", "RandomNoise"],
        "aimd.models.predictor": ["BasePredictor", "Prediction", "Predictor"],
        "aimd.models.distill": ["DistillationLoss", "soft_loss"],
        "aimd.models.specs": ["InputSpec", "Intensity", "OutputSpec"],
        "aimd.models.adapters": [
            "MonaiBundlePredictor",
            "OnnxPredictor",
            "OpenVinoPredictor",
            "TorchModulePredictor",
            "TorchScriptPredictor",
            "load_predictor",
            "save_torchscript",
            "write_monai_bundle",
        ],
        "aimd.models.networks": ["PatchEmbed", "UNetB1", "ViTClassifier"],
        "aimd.models.runs": ["Run", "load_run"],
        "aimd.models.targets": ["TARGETS", "Target", "get_target"],
        "aimd.models.losses": ["TaskLoss"],
        "aimd.models.config": ["TrainConfig", "make_config"],
        "aimd.models.zoo": ["ZOO", "ZooEntry", "build_network", "get_entry"],
        "aimd.models.lora": ["apply_lora", "merge_lora"],
        "aimd.models.describe": ["describe_model", "render", "write_description"],
        "aimd.models.evaluate": ["evaluate_logits", "score_classification", "score_segmentation"],
        "aimd.models.export": ["export_module_onnx", "export_run", "quantize_onnx"],
        "aimd.models.reference.shipped": ["load_reference"],
        "aimd.models.demo": ["run_model_demo"],
        "aimd.models.training": ["train"],
    },
)

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
