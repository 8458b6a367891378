"""Explanations a radiologist can read (003 §4.1.3, §5.1).

For every finding (up to ``max_findings``):

* a heatmap of what drove it — **Grad-CAM** or **Grad-CAM++** (MONAI; ``gradient_method``) when
  the model is a PyTorch module, with the finding's own region as target: the class logit summed
  (Grad-CAM) or averaged (Grad-CAM++, whose weights exponentiate the score) over the finding's
  voxels, so each finding gets its own map; 3-D models are explained in 3-D around each finding
  (:mod:`aimd.serving.explain3d`), detections on their box; **occlusion sensitivity** (MONAI) for
  models without gradients (ONNX, TorchScript, OpenVINO), on the finding's largest slice: the drop
  of the region-summed logit when a patch is hidden. The method used is recorded per finding and for the result;
* heatmaps as one NIfTI volume (maximum over findings, on the input grid) and one PNG overlay per
  finding (its largest slice, the finding outlined);
* the key-feature sentence in Chinese and English (:func:`aimd.serving.describe.key_features`);
* the confidence grade with "recommend manual review" below the review threshold;
* the most similar reference cases when an embedding index is loaded
  (:class:`aimd.serving.similar.EmbeddingIndex`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume
from aimd.models.predictor import BasePredictor, Prediction
from aimd.models.preprocess import preprocess_volume
from aimd.serving.describe import key_features
from aimd.serving.findings import InferenceFinding, components
from aimd.serving.inputs import InputImage
from aimd.serving.registry import LoadedModel


class RegionScore(nn.Module):
    """Sum of one output channel's logits over a region: the target of a segmentation explanation."""

    def __init__(self, net: nn.Module, mask: torch.Tensor, channel: int, *, mean: bool = False) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mask", mask)
        self.channel = channel
        self.scale = 1.0 / max(1.0, float(mask.sum())) if mean else 1.0  # Grad-CAM++ exponentiates the score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if out.ndim == 2:  # classification: the class logit itself
            return out[:, self.channel : self.channel + 1]
        spatial = tuple(range(2, out.ndim))
        summed = (out[:, self.channel : self.channel + 1] * self.mask).sum(dim=spatial) * self.scale
        return summed.reshape(x.shape[0], 1)


class NumpyNet(nn.Module):
    """A predictor without gradients seen as an ``nn.Module`` (forward only), for occlusion sensitivity."""

    def __init__(self, predictor: BasePredictor) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.predictor._logits(arr))


def conv_outputs(net: nn.Module, sample: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, output shape)`` of every convolution of ``net`` in execution order on ``sample``."""
    seen: list[tuple[str, tuple[int, ...]]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out, name=name: seen.append((name, tuple(out.shape))))
        for name, m in net.named_modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Conv3d | nn.ConvTranspose3d)
    ]
    try:
        with torch.no_grad():
            net(sample)
    finally:
        for h in hooks:
            h.remove()
    if not seen:
        raise InvalidInputError(
            "the network has no convolution layer",
            where="model",
            hint="Grad-CAM and encoder features need a convolutional PyTorch model",
        )
    return seen


def without_inplace(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose in-place activations compute out of place (gradient hooks need that)."""
    import copy

    clone = copy.deepcopy(net)
    for m in clone.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return clone


def gradcam_layer(net: nn.Module, sample: torch.Tensor) -> str:
    """Name of the last convolution whose output keeps the input's spatial size (the finest features)."""
    seen = conv_outputs(net, sample)
    full = [name for name, shape in seen if shape[2:] == tuple(sample.shape[2:])]
    return (full[-2] if len(full) > 1 else full[-1]) if full else seen[-1][0]


def _pad(x: NDArray[np.float32], multiple: int) -> tuple[NDArray[np.float32], tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, ph), (0, pw)], mode="edge")
    return x, (h, w)


def normalise(m: NDArray[np.float32]) -> NDArray[np.float32]:
    """Negative parts cut, scaled to a maximum of 1 (an all-zero map stays zero)."""
    m = np.clip(np.nan_to_num(m), 0, None)
    top = float(m.max())
    return (m / top).astype(np.float32) if top > 0 else m.astype(np.float32)


class Explainer:
    """Heatmaps, key-feature sentences and similar cases for the findings of one inference."""

    def __init__(
        self, *, occlusion_mask: int = 8, max_findings: int = 5, index: Any = None, gradient_method: str = "gradcam"
    ) -> None:
        from aimd.serving.explain3d import GRADIENT_METHODS

        if gradient_method not in GRADIENT_METHODS:
            raise InvalidInputError(
                f"unknown explanation method {gradient_method!r}",
                where="--explain-method",
                hint=f"use one of {list(GRADIENT_METHODS)}",
            )
        self.gradient_method = gradient_method
        self.occlusion_mask = occlusion_mask
        self.max_findings = max_findings
        self.index = index

    def __call__(
        self, model: LoadedModel, image: InputImage, prediction: Prediction, findings: list[InferenceFinding], out: Path
    ) -> dict[str, Any]:
        for f in findings:
            f.explanation["key_features"] = key_features(f)
            f.explanation["recommendation"] = (
                "recommend manual review (confidence below the review threshold)"
                if f.review_recommended
                else f"{f.grade} confidence"
            )
        if not findings:
            return {"method": None, "reason": "no findings to explain"}
        pred = model.predictor
        method = self.gradient_method if model.gradients else "occlusion"
        volume = image.volume
        three_d = pred.input_spec.dims == 3
        if three_d and not model.gradients:
            return {
                "method": None,
                "reason": "3-D models are explained by gradients; this runtime has none (serve the PyTorch model)",
            }
        if three_d:
            from aimd.serving.explain3d import gradient_map_3d, network_input

            inputs = network_input(pred, volume)
        else:
            inputs = preprocess_volume(volume, pred.input_spec)
        heat = np.zeros(volume.shape, np.float32)
        files: dict[str, str] = {}
        regions = components(prediction.labels, pred.output_spec) if prediction.labels is not None else []
        for k, f in enumerate(findings[: self.max_findings]):
            channel, region = self._region(pred, volume, regions, k, f)
            if three_d:
                full = gradient_map_3d(pred, volume, region, channel, method=method, inputs=inputs)
                slices = [int(z) for z in np.nonzero(full.any(axis=(1, 2)) | region.any(axis=(1, 2)))[0]]
                maps = [full[z] for z in slices]
            elif method != "occlusion":
                slices, maps = self._gradcam(pred, inputs, region, channel, method)
            else:
                slices, maps = self._occlusion(pred, inputs, region, channel)
            for z, m in zip(slices, maps, strict=True):
                heat[z] = np.maximum(heat[z], m)
            f.explanation["method"] = method
            f.explanation["heatmap_slices"] = [int(z) for z in slices]
            png = f"heatmap_{f.id}.png"
            best = int(slices[int(np.argmax([region[z].sum() for z in slices]))])
            _overlay_png(volume, heat, region, best, out / png, title=f"{f.id} {f.label_name} ({method})")
            files[f"heatmap_png_{f.id}"] = png
            f.explanation["heatmap_png"] = png
            if self.index is not None and three_d:
                f.explanation["similar_cases"] = {
                    "available": False,
                    "reason": "the reference index holds 2-D encoder features; this model is 3-D",
                }
            elif self.index is not None:
                f.explanation["similar_cases"] = self.index.query_finding(model, inputs, region, k=5)
            else:
                f.explanation["similar_cases"] = {
                    "available": False,
                    "reason": "no reference embedding index loaded (--index)",
                }
        from aimd.imaging.nifti_io import write_nifti

        write_nifti(
            Volume(heat, spacing=volume.spacing, origin=volume.origin, direction=volume.direction),
            out / "heatmap.nii.gz",
        )
        files["heatmap_nifti"] = "heatmap.nii.gz"
        return {
            "method": method,
            "library": "MONAI",
            "dims": pred.input_spec.dims,
            "target": "class logit summed over each finding's region",
            "files": files,
            "explained": min(len(findings), self.max_findings),
        }

    @staticmethod
    def _region(
        pred: BasePredictor, volume: Volume, regions: list[Any], k: int, finding: InferenceFinding
    ) -> tuple[int, NDArray[np.bool_]]:
        """Output channel and input-grid mask a finding's explanation targets."""
        region = np.zeros(volume.shape, bool)
        if regions:
            _, channel, zyx, local = regions[k]
            region[zyx] = local
            return channel, region
        channel = pred.output_spec.positive_class if pred.output_spec.activation == "softmax" else 0
        if finding.box_px is not None:  # a detection: its box on its image
            x0, y0, x1, y1 = finding.box_px
            z = int(finding.explanation.get("image_index", 0))
            ys = slice(max(0, int(np.floor(y0))), max(1, int(np.ceil(y1))))
            xs = slice(max(0, int(np.floor(x0))), max(1, int(np.ceil(x1))))
            region[z, ys, xs] = True
            return channel, region
        region[:] = True
        return channel, region

    # ------------------------------------------------------------------ methods
    def _gradcam(
        self,
        pred: BasePredictor,
        inputs: NDArray[np.float32],
        region: NDArray[np.bool_],
        channel: int,
        method: str = "gradcam",
    ) -> tuple[list[int], list[NDArray[np.float32]]]:
        from monai.visualize import GradCAM, GradCAMpp

        net = without_inplace(pred.module)  # type: ignore[attr-defined]
        slices = [int(z) for z in np.nonzero(region.any(axis=(1, 2)))[0]]
        x, (h, w) = _pad(inputs[slices], max(1, pred.input_spec.size_multiple))
        m, _ = _pad(region[slices][:, None].astype(np.float32), max(1, pred.input_spec.size_multiple))
        target = RegionScore(net, torch.from_numpy(m), channel, mean=method == "gradcampp").eval()
        layer = "net." + gradcam_layer(net, torch.from_numpy(x[:1]))
        cls = GradCAMpp if method == "gradcampp" else GradCAM
        cam = cls(nn_module=target, target_layers=layer, postprocessing=lambda t: t)  # MONAI's default flips
        with torch.enable_grad():
            out = cam(torch.from_numpy(x).requires_grad_(True), class_idx=0)
        arr = out.detach().numpy()[:, 0, :h, :w]
        return slices, [normalise(a) for a in arr]

    def _occlusion(
        self, pred: BasePredictor, inputs: NDArray[np.float32], region: NDArray[np.bool_], channel: int
    ) -> tuple[list[int], list[NDArray[np.float32]]]:
        from monai.visualize import OcclusionSensitivity

        z = int(np.argmax(region.sum(axis=(1, 2))))
        x, (h, w) = _pad(inputs[z : z + 1], max(1, pred.input_spec.size_multiple))
        m, _ = _pad(region[z : z + 1, None].astype(np.float32), max(1, pred.input_spec.size_multiple))
        target = RegionScore(NumpyNet(pred), torch.from_numpy(m), channel).eval()
        occ = OcclusionSensitivity(
            nn_module=target,
            mask_size=self.occlusion_mask,
            n_batch=16,
            verbose=False,
            mode="mean_img",
            overlap=0.5,
            activate=False,
        )
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # MONAI indexes with lists (deprecated in torch)
            base = float(target(torch.from_numpy(x))[0, 0])
            occ_map, _ = occ(torch.from_numpy(x))
        occluded = occ_map.numpy()[0, 0]
        if occluded.ndim == 3:  # one map per output channel (N) when there are several
            occluded = occluded[..., 0]
        drop = base - occluded
        return [z], [normalise(drop[:h, :w])]


def _overlay_png(
    volume: Volume, heat: NDArray[np.float32], region: NDArray[np.bool_], z: int, path: Path, *, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = np.asarray(volume.array[z], dtype=np.float32)
    if (volume.modality or "").upper() == "CT":
        img = np.clip((img + 1000.0) / 1400.0, 0, 1)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(img, cmap="gray")
    ax.imshow(np.ma.masked_less(heat[z], 0.05), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    if region[z].any():
        ax.contour(region[z].astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


__all__ = ["Explainer", "NumpyNet", "RegionScore", "conv_outputs", "gradcam_layer", "normalise", "without_inplace"]
