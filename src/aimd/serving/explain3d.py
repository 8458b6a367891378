"""Gradient explanations of 3-D segmentation models, one finding at a time.

The network sees the volume the way it did at inference (the reference lesion device: resampled to
its grid and windowed; other 3-D models: their declared intensity mapping). For each finding, a
block around its region — at least the model's patch size, a multiple of its size step — is cut from
that input, and Grad-CAM or Grad-CAM++ (MONAI) is taken with the finding's region-summed logit as
target. The map is put back on the input grid.

Example
-------
>>> import numpy as np
>>> crop_box(np.pad(np.ones((2, 2, 2), bool), 10), (8, 8, 8), 4)
(slice(5, 17, None), slice(5, 17, None), slice(5, 17, None))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from numpy.typing import NDArray

from aimd.imaging.volume import Volume
from aimd.models.predictor import BasePredictor
from aimd.models.preprocess import preprocess_volume

GRADIENT_METHODS = ("gradcam", "gradcampp")


def network_input(
    pred: BasePredictor, volume: Volume
) -> tuple[NDArray[np.float32], Callable[[NDArray[np.float32]], NDArray[np.float32]]]:
    """``(c, z, y, x)`` network input of ``volume`` and a function mapping model-grid arrays to the input grid."""
    from aimd.models.reference.lesions import LesionSegmenter, model_shape, resize, window

    if isinstance(pred, LesionSegmenter):
        hu = np.asarray(volume.array, dtype=np.float32)
        x = window(resize(hu, model_shape(hu.shape, volume.spacing)))
        return x, lambda a: resize(a, volume.shape)
    unit = preprocess_volume(volume, pred.input_spec)
    return np.ascontiguousarray(unit.transpose(1, 0, 2, 3)), lambda a: a.astype(np.float32)


def crop_box(mask: NDArray[np.bool_], patch: Sequence[int], multiple: int) -> tuple[slice, slice, slice]:
    """A block around ``mask``'s voxels: at least ``patch`` and the region plus a margin, a multiple of ``multiple``."""
    idx = np.nonzero(mask)
    out = []
    for axis in range(3):
        lo, hi = int(idx[axis].min()), int(idx[axis].max()) + 1
        size = max(int(patch[axis]), hi - lo + 2 * max(4, (hi - lo) // 2))
        size = -(-size // multiple) * multiple
        start = (lo + hi) // 2 - size // 2
        start = min(max(0, start), max(0, mask.shape[axis] - size))
        out.append(slice(start, start + size))
    return out[0], out[1], out[2]


def _pad_to(x: NDArray[np.float32], shape: Sequence[int]) -> NDArray[np.float32]:
    pads = [(0, 0)] * (x.ndim - 3) + [(0, max(0, int(s) - n)) for s, n in zip(shape, x.shape[-3:], strict=True)]
    return np.pad(x, pads, mode="edge") if any(p[1] for p in pads) else x


def feature_layer(net: torch.nn.Module, sample: torch.Tensor) -> str:
    """The last convolution before the output head: the finest features with more channels than the output."""
    from aimd.serving.explain import conv_outputs

    seen = conv_outputs(net, sample)
    head = seen[-1][1][1]
    features = [name for name, shape in seen if shape[1] > head]
    return features[-1] if features else seen[-1][0]


def gradient_map_3d(
    pred: BasePredictor,
    volume: Volume,
    region: NDArray[np.bool_],
    channel: int,
    *,
    method: str = "gradcam",
    inputs: tuple[NDArray[np.float32], Callable[[NDArray[np.float32]], NDArray[np.float32]]] | None = None,
) -> NDArray[np.float32]:
    """Grad-CAM (``gradcam``) or Grad-CAM++ (``gradcampp``) of one region, on ``volume``'s grid, in [0, 1]."""
    from monai.visualize import GradCAM, GradCAMpp

    from aimd.models.reference.lesions import resize
    from aimd.serving.explain import RegionScore, normalise, without_inplace

    x, to_input = inputs or network_input(pred, volume)
    grid = x.shape[1:]
    r = resize(region.astype(np.float32), grid) >= 0.5 if tuple(grid) != region.shape else region
    if not r.any():  # a region smaller than one model voxel: its nearest model voxel
        zyx = np.argwhere(region).mean(axis=0) * (np.array(grid) - 1) / np.maximum(np.array(region.shape) - 1, 1)
        r = np.zeros(grid, bool)
        r[tuple(np.round(zyx).astype(int))] = True
    box = crop_box(r, pred.input_spec.patch_size, max(1, pred.input_spec.size_multiple))
    want = [s.stop - s.start for s in box]
    xc = _pad_to(x[(slice(None), *box)], want)
    mc = _pad_to(r[box].astype(np.float32), want)
    net = without_inplace(pred.module)  # type: ignore[attr-defined]
    target = RegionScore(net, torch.from_numpy(mc[None, None].copy()), channel, mean=method == "gradcampp").eval()
    layer = "net." + feature_layer(net, torch.from_numpy(xc[None]))
    cls = GradCAMpp if method == "gradcampp" else GradCAM
    cam = cls(nn_module=target, target_layers=layer, postprocessing=lambda t: t)
    with torch.enable_grad():
        out = cam(torch.from_numpy(xc[None].copy()).requires_grad_(True), class_idx=0)
    local = out.detach().numpy()[0, 0]
    full = np.zeros(grid, np.float32)
    valid = tuple(slice(0, min(w, g - s.start)) for w, g, s in zip(want, grid, box, strict=True))
    full[box] = local[valid]
    return normalise(np.clip(to_input(normalise(full)), 0.0, 1.0))


__all__ = ["GRADIENT_METHODS", "crop_box", "feature_layer", "gradient_map_3d", "network_input"]
