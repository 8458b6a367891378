"""``device-nodules``: lung-nodule detection on radiographs (DX) with boxes and scores (003 §4.1).

* **Input**: the radiograph's stored values divided by its bit depth (12-bit phantom DRRs), one
  channel, at its own pixel spacing (square pixels, 0.7–0.9 mm); sizes padded to a multiple of 16.
* **Network**: the zoo's ``unet-small`` design (2-D U-Net of 000 App. B, 8…128 channels) with a
  two-channel centre-point head: channel 0 a nodule-centre heatmap, channel 1 the nodule radius as
  a fraction of :data:`R_MAX_PX` (both through a sigmoid).
* **Training**: 128 × 64-pixel crops (two in three centred near a nodule when the image has one),
  left–right flips, intensity gain/offset and extra quantum noise; penalty-reduced focal loss on
  Gaussian centre heatmaps (CenterNet) plus L1 on the radius at the centres; AdamW, warm-up + cosine.
* **Decoding**: local maxima of the heatmap (3 × 3) above :data:`MIN_SCORE`, at most
  :data:`MAX_DETECTIONS` per image; box = centre ± predicted radius; image score = highest box score.

Evaluation (:func:`evaluate_nodules`): FROC (box IoU ≥ :data:`MATCH_IOU`), object sensitivity and
FPs per image and image-level sensitivity / specificity at the operating point :data:`THRESHOLD`,
image-level AUC — each with a 95 % bootstrap CI over images (aimd.metrics).

Example
-------
>>> heat = np.zeros((1, 2, 32, 32), np.float32); heat[0, 0, 10, 12] = 0.9; heat[0, 1, 10, 12] = 0.25
>>> decode(heat[0])[0]["box"]
[4.5, 2.5, 20.5, 18.5]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from aimd.imaging.volume import Volume
from aimd.metrics.classification import binary_metrics, roc_curve
from aimd.metrics.detection import ImageObjects
from aimd.metrics.detection_rates import detection_counts, froc
from aimd.metrics.statistics import bootstrap_ci
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.models.predictor import Prediction
from aimd.models.preprocess import check_volume, intensity_to_unit
from aimd.models.reference.common import (
    RecipeSettings,
    Stopwatch,
    froc_ci,
    headline,
    ratio_ci,
    run_steps,
    torch_settings,
)
from aimd.models.specs import InputSpec, Intensity, OutputSpec
from aimd.models.zoo import get_entry
from aimd.phantoms.case import PhantomCase
from aimd.phantoms.radiograph import dx_boxes

R_MAX_PX = 32.0
CROP = (128, 64)
THRESHOLD = 0.5
MIN_SCORE = 0.05
MAX_DETECTIONS = 10
MATCH_IOU = 0.3
FACTORY = "aimd.models.networks.unet:UNetB1"
NETWORK_KWARGS: dict[str, Any] = {**get_entry("unet-small").kwargs, "in_channels": 1, "out_channels": 2}

INPUT_SPEC = InputSpec(
    modality="DX", dims=2, channels=1, patch_size=CROP, size_multiple=16, intensity=Intensity(method="bit_depth")
)
OUTPUT_SPEC = OutputSpec(
    task="segmentation",
    labels={1: "nodule_centre"},
    activation="sigmoid",
    threshold=THRESHOLD,
    target="nodule_boxes",
    description="centre-point detector: channel 0 nodule-centre heatmap, channel 1 radius "
    f"/ {R_MAX_PX:g} px; decoded into boxes with scores",
)


@dataclass(frozen=True)
class NoduleRecipe(RecipeSettings):
    """Settings of the ``device-nodules`` recipe (the shipped weights use the defaults)."""

    train_cases: int = 400
    data_seed: int = 1810
    steps: int = 1500
    batch: int = 16
    positive_crop: float = 0.67
    lr: float = 2e-3
    size_weight: float = 0.1
    extra_noise: float = 0.01


def build_network() -> nn.Module:
    """The zoo's ``unet-small`` design with a two-channel centre-point head, fresh weights."""
    from aimd.models.networks.unet import UNetB1

    net = UNetB1(**NETWORK_KWARGS)
    head = net.output[-1]
    assert isinstance(head, nn.Conv2d) and head.bias is not None
    with torch.no_grad():  # heatmap prior 0.1 (CenterNet), so the first steps are not swamped by background
        head.bias[0] = -2.19
    return net


def image_unit(image: NDArray[Any], bits: int = 12) -> NDArray[np.float32]:
    """Stored radiograph values → [0, 1]."""
    return np.clip(image.astype(np.float32) / np.float32(2**bits - 1), 0.0, 1.0)


def case_boxes(case: PhantomCase) -> list[dict[str, Any]]:
    """The phantom's lung-nodule boxes on its radiograph (``dx_boxes.json`` entries)."""
    return list(dx_boxes(case.drr, case.grid, case.lesions)["boxes"])


def dx_volume(case: PhantomCase) -> Volume:
    """The radiograph of a phantom case as a DX :class:`Volume` (one slice)."""
    row_sp, col_sp = case.drr.pixel_spacing
    return Volume(
        case.drr.image[None],
        spacing=(col_sp, row_sp, 1.0),
        modality="DX",
        metadata={"bits_stored": 12, "photometric": "MONOCHROME2"},
    )


# ---------------------------------------------------------------------------------------------- targets
def heatmap_targets(
    shape: tuple[int, int], boxes: Sequence[dict[str, Any]]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Gaussian centre heatmap ``(h, w)`` (1 at each centre pixel) and radius map (px, at centres, else −1)."""
    h, w = shape
    heat = np.zeros(shape, np.float32)
    radius = np.full(shape, -1.0, np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for b in boxes:
        cx, cy = b["centre_px"][0] - 0.5, b["centre_px"][1] - 0.5
        x0, y0, x1, y1 = b["xyxy"]
        r = max(1.0, max(x1 - x0, y1 - y0) / 2.0)
        sigma = max(1.0, r / 3.0)
        heat = np.maximum(heat, np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).astype(np.float32))
        iy, ix = int(round(cy)), int(round(cx))
        if 0 <= iy < h and 0 <= ix < w:
            heat[iy, ix] = 1.0
            radius[iy, ix] = r
    return heat, radius


def centre_loss(logits: torch.Tensor, heat: torch.Tensor, radius: torch.Tensor, size_weight: float) -> torch.Tensor:
    """Penalty-reduced focal loss on the heatmap + ``size_weight`` × L1 radius (px) at the centres."""
    p = torch.sigmoid(logits[:, 0]).clamp(1e-4, 1 - 1e-4)
    pos = heat >= 1.0
    n_pos = pos.sum().clamp(min=1)
    pos_loss = ((1 - p) ** 2 * torch.log(p))[pos].sum()
    neg_loss = ((1 - heat) ** 4 * p**2 * torch.log(1 - p))[~pos].sum()
    focal = -(pos_loss + neg_loss) / n_pos
    has = radius >= 0
    if has.any():
        r_pred = torch.sigmoid(logits[:, 1])[has] * R_MAX_PX
        size = (r_pred - radius[has]).abs().mean()
    else:
        size = logits.sum() * 0.0
    return focal + size_weight * size


# ---------------------------------------------------------------------------------------------- predictor
def _pad16(arr: NDArray[np.float32]) -> tuple[NDArray[np.float32], tuple[int, int]]:
    h, w = arr.shape[-2:]
    ph, pw = (-h) % 16, (-w) % 16
    return np.pad(arr, [(0, 0)] * (arr.ndim - 2) + [(0, ph), (0, pw)]), (h, w)


def decode(probs: NDArray[np.float32]) -> list[dict[str, Any]]:
    """Boxes from ``(2, h, w)`` probabilities: 3 × 3 local maxima ≥ :data:`MIN_SCORE`, best first."""
    heat = torch.from_numpy(np.ascontiguousarray(probs[0]))[None, None]
    peaks = (heat == F.max_pool2d(heat, 3, stride=1, padding=1))[0, 0].numpy() & (probs[0] >= MIN_SCORE)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-probs[0][ys, xs], kind="stable")[:MAX_DETECTIONS]
    out = []
    for i in order:
        y, x = int(ys[i]), int(xs[i])
        r = float(probs[1, y, x]) * R_MAX_PX
        cx, cy = x + 0.5, y + 0.5
        out.append(
            {
                "box": [round(cx - r, 3), round(cy - r, 3), round(cx + r, 3), round(cy + r, 3)],
                "score": round(float(probs[0, y, x]), 6),
                "centre_px": [cx, cy],
                "radius_px": round(r, 3),
            }
        )
    return out


class NoduleDetector(TorchModulePredictor):
    """The ``device-nodules`` model behind the :class:`~aimd.models.predictor.Predictor` protocol.

    ``predict(batch)`` takes preprocessed images ``(n, 1, h, w)`` (sizes multiples of 16) and returns
    the two sigmoid maps; :meth:`detect` and :meth:`predict_volume` take a DX :class:`Volume` and
    return boxes ``[x0, y0, x1, y1]`` in pixel-edge coordinates (as dx_boxes.json) with scores.
    """

    def __init__(self, module: nn.Module, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(module, INPUT_SPEC, OUTPUT_SPEC, {"model": "device-nodules", **(metadata or {})})

    def maps(self, volume: Volume, *, modality: str | None = None, where: str = "input") -> NDArray[np.float32]:
        """``(n_images, 2, h, w)`` heatmap and radius maps of each image of ``volume``."""
        check_volume(volume, self.input_spec, modality=modality, where=where)
        unit = intensity_to_unit(volume, self.input_spec)
        padded, (h, w) = _pad16(unit)
        probs = self.predict(padded)
        return probs[..., :h, :w]

    def detect(
        self, volume: Volume, *, modality: str | None = None, where: str = "input"
    ) -> list[list[dict[str, Any]]]:
        """Per image of ``volume``: the detected nodules, best first."""
        return [decode(p) for p in self.maps(volume, modality=modality, where=where)]

    def predict_volume(
        self,
        volume: Volume,
        *,
        modality: str | None = None,
        where: str = "input",
        sw_batch_size: int = 8,
        overlap: float = 0.25,
    ) -> Prediction:
        """Boxes per image in ``record["detections"]``; ``scores``: highest box score per image."""
        started = time.perf_counter()
        probs = self.maps(volume, modality=modality, where=where)
        found = [decode(p) for p in probs]
        scores = np.array([f[0]["score"] if f else 0.0 for f in found], np.float32)
        record = {
            "checked": {"modality": "DX", "spacing_mm": list(volume.spacing)},
            "intensity": self.input_spec.intensity.model_dump(),
            "inference": "whole image, padded to 16",
            "activation": "sigmoid",
            "postprocessing": postprocessing_text(),
            "detections": found,
            "seconds": round(time.perf_counter() - started, 4),
        }
        return Prediction(probabilities=probs, scores=scores, record=record)


def postprocessing_text() -> str:
    """The decoding in one sentence."""
    return (
        f"3×3 local maxima of the centre heatmap with score ≥ {MIN_SCORE:g} (at most {MAX_DETECTIONS}); "
        f"box = centre ± predicted radius; image score = highest box score; operating point {THRESHOLD:g}"
    )


# ---------------------------------------------------------------------------------------------- training
def _crop(
    img: NDArray[np.float32],
    heat: NDArray[np.float32],
    radius: NDArray[np.float32],
    boxes: Sequence[dict[str, Any]],
    rng: np.random.Generator,
    positive: float,
) -> tuple[NDArray[np.float32], ...]:
    ch, cw = CROP
    h, w = img.shape
    if h < ch or w < cw:
        pads = ((0, max(0, ch - h)), (0, max(0, cw - w)))
        img, heat = np.pad(img, pads), np.pad(heat, pads)
        radius = np.pad(radius, pads, constant_values=-1.0)
        h, w = img.shape
    if boxes and rng.random() < positive:
        b = boxes[int(rng.integers(len(boxes)))]
        cy, cx = b["centre_px"][1], b["centre_px"][0]
        y0 = int(np.clip(cy - rng.uniform(8, ch - 8), 0, h - ch))
        x0 = int(np.clip(cx - rng.uniform(8, cw - 8), 0, w - cw))
    else:
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    sl = (slice(y0, y0 + ch), slice(x0, x0 + cw))
    return img[sl], heat[sl], radius[sl]


def train_nodules(
    recipe: NoduleRecipe, cases: Sequence[PhantomCase], *, progress: Callable[[int, float], object] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the centre-point detector on ``cases``; returns the network (eval mode) and the training log."""
    watch = Stopwatch()
    with torch_settings(recipe.threads, recipe.seed):
        data = []
        for case in cases:
            boxes = case_boxes(case)
            img = image_unit(case.drr.image)
            heat, radius = heatmap_targets(img.shape, boxes)
            data.append((img, heat, radius, boxes))
        prep = watch.read()
        rng = np.random.default_rng(recipe.seed)
        net = build_network()

        def batch_loss(model: nn.Module) -> torch.Tensor:
            xs, hs, rs = [], [], []
            for idx in rng.integers(0, len(data), recipe.batch):
                img, heat, radius = _crop(*data[int(idx)], rng, recipe.positive_crop)
                img = img * np.float32(rng.uniform(0.9, 1.1)) + np.float32(rng.uniform(-0.05, 0.05))
                img = img + rng.standard_normal(img.shape).astype(np.float32) * np.float32(
                    rng.uniform(0, recipe.extra_noise)
                )
                if rng.random() < 0.5:
                    img, heat, radius = img[:, ::-1], heat[:, ::-1], radius[:, ::-1]
                xs.append(np.clip(img, 0.0, 1.0))
                hs.append(heat)
                rs.append(radius)
            return centre_loss(
                model(torch.from_numpy(np.ascontiguousarray(np.stack(xs)[:, None]))),
                torch.from_numpy(np.ascontiguousarray(np.stack(hs))),
                torch.from_numpy(np.ascontiguousarray(np.stack(rs))),
                recipe.size_weight,
            )

        curve = run_steps(
            net,
            steps=recipe.steps,
            lr=recipe.lr,
            warmup=recipe.warmup,
            weight_decay=recipe.weight_decay,
            batch_loss=batch_loss,
            watch=watch,
            progress=progress,
        )
    return net, {"curve": curve, "preprocessing": prep, "training": watch.read(), "crops_per_step": recipe.batch}


# ---------------------------------------------------------------------------------------------- evaluation
def _auc(truth: NDArray[Any], scores: NDArray[Any]) -> float:
    if truth.all() or not truth.any():
        return float("nan")
    return roc_curve(truth, scores).auc


def evaluate_nodules(
    detector: NoduleDetector,
    cases: Sequence[PhantomCase],
    *,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """FROC, object sensitivity / FPs per image, image-level sensitivity / specificity and AUC; 95 % CIs."""
    watch = Stopwatch()
    refs, dets, truth, scores = [], [], [], []
    per_image = []
    for i, case in enumerate(cases):
        boxes = case_boxes(case)
        found = detector.detect(dx_volume(case))[0]
        refs.append(ImageObjects.boxes_from_corners(case.case_id, np.array([b["xyxy"] for b in boxes]).reshape(-1, 4)))
        dets.append(
            ImageObjects.boxes_from_corners(
                case.case_id, np.array([f["box"] for f in found]).reshape(-1, 4), scores=[f["score"] for f in found]
            )
        )
        truth.append(bool(boxes))
        scores.append(found[0]["score"] if found else 0.0)
        per_image.append(
            {
                "case": case.case_id,
                "site": case.site.site_id,
                "nodules": len(boxes),
                "detections": len(found),
                "image_score": scores[-1],
            }
        )
        if progress:
            progress(i + 1)
    t = np.array(truth, bool)
    s = np.array(scores, np.float64)
    match = {"criterion": "iou", "threshold": MATCH_IOU}
    curve = froc(refs, dets, rates=(0.125, 0.25, 0.5, 1, 2, 4, 8), **match)
    pred = s >= THRESHOLD
    counts = binary_metrics(t, pred)
    hits, n_obj, fps = [], [], []
    for r, d in zip(refs, dets, strict=True):
        c = detection_counts([r], [d], score_threshold=THRESHOLD, **match)
        hits.append(c.tp)
        n_obj.append(c.tp + c.fn)
        fps.append(c.fp)
    if 0 < t.sum() < len(t):
        ci = bootstrap_ci((t.astype(np.int64), s), lambda a, b: _auc(a.astype(bool), b), seed=seed, method="percentile")
        auc: dict[str, Any] = {**ci.to_dict(), "n": len(cases)}
    else:
        auc = {
            "estimate": None,
            "ci_low": None,
            "ci_high": None,
            "n": len(cases),
            "note": "not evaluated: the images are all positive or all negative",
        }
    return {
        "images": len(cases),
        "sites": sorted({c.site.site_id for c in cases}),
        "positive_images": int(t.sum()),
        "nodules": int(sum(n_obj)),
        "froc": curve.to_dict(),
        "froc_sensitivity_at_1fp": froc_ci(refs, dets, rate=1.0, seed=seed, **match),
        "object_sensitivity": ratio_ci(np.array(hits), np.array(n_obj), seed=seed),
        "fp_per_image": ratio_ci(np.array(fps), np.ones(len(cases)), seed=seed),
        "image_sensitivity": ratio_ci(pred[t].astype(float), np.ones(int(t.sum())), seed=seed),
        "image_specificity": ratio_ci((~pred[~t]).astype(float), np.ones(int((~t).sum())), seed=seed),
        "image_counts": {"tp": counts.tp, "fp": counts.fp, "fn": counts.fn, "tn": counts.tn},
        "image_auc": auc,
        "operating_point": f"box score ≥ {THRESHOLD:g}",
        "matching": f"box IoU ≥ {MATCH_IOU:g} (aimd.metrics matching rule)",
        "per_image": per_image,
        "seconds": watch.read(),
    }


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of :func:`evaluate_nodules` (with their CIs) for records and the zoo."""
    keys = ("froc_sensitivity_at_1fp", "image_auc", "image_sensitivity", "image_specificity")
    return headline(metrics, (*keys, "object_sensitivity", "fp_per_image"))


RECIPE = NoduleRecipe
TRAIN = train_nodules
PREDICTOR = NoduleDetector
EVALUATE = evaluate_nodules
SUMMARY = summary

__all__ = [
    "EVALUATE",
    "INPUT_SPEC",
    "OUTPUT_SPEC",
    "PREDICTOR",
    "RECIPE",
    "SUMMARY",
    "TRAIN",
    "NoduleDetector",
    "NoduleRecipe",
    "build_network",
    "centre_loss",
    "decode",
    "dx_volume",
    "evaluate_nodules",
    "heatmap_targets",
    "summary",
    "train_nodules",
]
