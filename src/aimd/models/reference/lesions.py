"""``device-lesions``: CT lesion segmentation (lung nodules incl. ground-glass, liver tumours; 003 §4.2.2).

* **Input**: the CT in HU, resampled to :data:`SPACING` (x, y, z mm) and mapped through two windows
  (lung −600/1500 and a narrow liver window 60/200 HU) into two channels in [0, 1].
* **Network**: MONAI 3-D U-Net (8…64 channels, one residual unit per level, instance norm).
* **Training**: 3-D patches :data:`PATCH` drawn by MONAI ``RandCropByPosNegLabeld`` (lesion-centred
  and background patches in a fixed ratio), HU-offset, extra-noise and left–right-flip augmentation,
  Dice + focal loss, AdamW with warm-up and cosine decay, a fixed step count (no test data is looked at).
* **Inference**: Gaussian-weighted sliding window over the resampled volume, sigmoid, resampled back
  to the input grid.
* **Lesion-wise post-processing**: voxels with probability ≥ :data:`THRESHOLD`, 26-connected
  components, components smaller than :data:`MIN_LESION_MM3` dropped; each lesion scores its
  highest voxel probability.

Evaluation (:func:`evaluate_lesions`) reports voxel Dice per case, lesion-wise sensitivity and false
positives per case at the operating point and the FROC (aimd.metrics), with bootstrap CIs over cases.

Example
-------
>>> net = build_network()
>>> sum(p.numel() for p in net.parameters()) > 100_000
True
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy import ndimage
from torch import nn

from aimd.imaging.volume import Volume
from aimd.metrics.detection import ImageObjects, match_image
from aimd.metrics.detection_rates import froc
from aimd.metrics.segmentation import dice, precision, recall
from aimd.metrics.surface import hausdorff_distance_95
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.models.predictor import Prediction
from aimd.models.preprocess import check_volume
from aimd.models.reference.common import (
    RecipeSettings,
    Stopwatch,
    froc_ci,
    mean_ci,
    ratio_ci,
    run_steps,
    torch_settings,
)
from aimd.models.specs import InputSpec, Intensity, OutputSpec
from aimd.phantoms.case import PhantomCase

SPACING = (0.8, 0.8, 1.6)
WINDOWS = ((-600.0, 1500.0), (60.0, 200.0))
PATCH = (32, 48, 48)
THRESHOLD = 0.5
MIN_LESION_MM3 = 15.0
MIN_REPORTED_DIAMETER_MM = 5.0
MATCH_IOU = 0.1
FACTORY = "monai.networks.nets:UNet"
NETWORK_KWARGS: dict[str, Any] = {
    "spatial_dims": 3,
    "in_channels": 2,
    "out_channels": 1,
    "channels": (8, 16, 32, 64),
    "strides": (2, 2, 2),
    "num_res_units": 1,
    "norm": "instance",
}
LESION_LABELS = (5, 6)

INPUT_SPEC = InputSpec(
    modality="CT",
    dims=3,
    channels=2,
    patch_size=PATCH,
    size_multiple=8,
    spacing_mm=(SPACING[0], SPACING[1]),
    intensity=Intensity(method="window", windows=WINDOWS),
)
OUTPUT_SPEC = OutputSpec(
    task="segmentation",
    labels={1: "lesion"},
    activation="sigmoid",
    threshold=THRESHOLD,
    source_labels={1: list(LESION_LABELS)},
    target="lesions",
    description="lung nodules (solid, ground-glass) and liver tumours as one lesion class",
)


@dataclass(frozen=True)
class LesionRecipe(RecipeSettings):
    """Settings of the ``device-lesions`` recipe (the shipped weights use the defaults, with ``--threads 2``)."""

    train_cases: int = 160
    data_seed: int = 1800
    steps: int = 5000
    cases_per_step: int = 2
    samples_per_case: int = 2
    pos: float = 1.0
    neg: float = 1.0
    lr: float = 3e-3
    lambda_dice: float = 1.0
    lambda_focal: float = 1.0
    hu_shift: float = 20.0
    extra_noise_hu: float = 20.0


def build_network() -> nn.Module:
    """The recipe's 3-D U-Net with fresh weights."""
    from monai.networks.nets import UNet

    net = UNet(**NETWORK_KWARGS)
    last = [m for m in net.modules() if isinstance(m, nn.Conv3d | nn.ConvTranspose3d)][-1]
    assert last.bias is not None
    with torch.no_grad():  # lesion prior ≈ 2 %: Adam would need hundreds of steps to move the bias there
        last.bias.fill_(-4.0)
    return net


# ---------------------------------------------------------------------------------------------- geometry
def model_shape(shape: Sequence[int], spacing: Sequence[float]) -> tuple[int, int, int]:
    """``(z, y, x)`` size of a volume of ``shape`` (z, y, x) and ``spacing`` (x, y, z) on :data:`SPACING`."""
    sx, sy, sz = spacing
    return (
        max(2, round(shape[0] * sz / SPACING[2])),
        max(2, round(shape[1] * sy / SPACING[1])),
        max(2, round(shape[2] * sx / SPACING[0])),
    )


def resize(array: NDArray[Any], shape: Sequence[int]) -> NDArray[np.float32]:
    """Trilinear resize of a ``(z, y, x)`` or ``(c, z, y, x)`` array to ``shape`` (corners aligned)."""
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    squeeze = t.ndim == 3
    t = t[None, None] if squeeze else t[None]
    out = F.interpolate(t, size=tuple(int(s) for s in shape), mode="trilinear", align_corners=True)[0]
    return (out[0] if squeeze else out).numpy()


def window(hu: NDArray[np.float32]) -> NDArray[np.float32]:
    """HU ``(…)`` → ``(2, …)`` channels in [0, 1], one per window of :data:`WINDOWS`."""
    return np.stack([np.clip((hu - (c - w / 2)) / w, 0.0, 1.0) for c, w in WINDOWS]).astype(np.float32)


def lesion_mask(labels: NDArray[Any]) -> NDArray[np.bool_]:
    """Voxels of any lesion label (5: lung nodule, 6: liver tumour)."""
    return np.isin(labels, LESION_LABELS)


# ---------------------------------------------------------------------------------------------- predictor
class LesionSegmenter(TorchModulePredictor):
    """The ``device-lesions`` model behind the :class:`~aimd.models.predictor.Predictor` protocol.

    ``predict(batch)`` takes preprocessed 3-D patches ``(n, 2, z, y, x)``; :meth:`predict_volume`
    takes a CT :class:`Volume` in HU and returns the post-processed lesion mask on its grid, with
    the lesions found (:meth:`find_lesions`) in ``record["lesions"]``.
    """

    def __init__(self, module: nn.Module, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(module, INPUT_SPEC, OUTPUT_SPEC, {"model": "device-lesions", **(metadata or {})})

    def probability_map(
        self, volume: Volume, *, modality: str | None = None, where: str = "input", overlap: float = 0.5
    ) -> NDArray[np.float32]:
        """Lesion probability per voxel of ``volume`` (same ``(z, y, x)`` grid)."""
        from monai.inferers import sliding_window_inference

        check_volume(volume, self.input_spec, modality=modality, where=where)
        hu = np.asarray(volume.array, dtype=np.float32)
        inputs = window(resize(hu, model_shape(hu.shape, volume.spacing)))

        def run(patch: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(self._logits(np.ascontiguousarray(patch.numpy(), dtype=np.float32)))

        with torch.inference_mode():
            logits = sliding_window_inference(
                torch.from_numpy(inputs[None]),
                roi_size=PATCH,
                sw_batch_size=4,
                predictor=run,
                overlap=overlap,
                mode="gaussian",
            )
        assert isinstance(logits, torch.Tensor)
        probs = torch.sigmoid(logits[0, 0]).numpy()
        return np.clip(resize(probs, hu.shape), 0.0, 1.0)

    def find_lesions(
        self, volume: Volume, *, modality: str | None = None, where: str = "input"
    ) -> tuple[NDArray[np.int32], list[dict[str, Any]]]:
        """Instance mask (0 = none, k = lesion k) and one entry per lesion: voxels, volume, centre, box, score."""
        probs = self.probability_map(volume, modality=modality, where=where)
        return postprocess(probs, volume.spacing)

    def predict_volume(
        self,
        volume: Volume,
        *,
        modality: str | None = None,
        where: str = "input",
        sw_batch_size: int = 4,
        overlap: float = 0.5,
    ) -> Prediction:
        """Lesion mask of a CT volume after lesion-wise post-processing (see module docs)."""
        started = time.perf_counter()
        probs = self.probability_map(volume, modality=modality, where=where, overlap=overlap)
        instances, lesions = postprocess(probs, volume.spacing)
        labels = Volume(
            (instances > 0).astype(np.uint8),
            spacing=volume.spacing,
            origin=volume.origin,
            direction=volume.direction,
            modality="SEG",
            metadata={"labels": {"1": "lesion"}},
        )
        record = {
            "checked": {"modality": "CT", "spacing_mm": list(volume.spacing)},
            "resampled_to_mm": list(SPACING),
            "intensity": self.input_spec.intensity.model_dump(),
            "inference": {"sliding_window": True, "roi": list(PATCH), "overlap": overlap, "mode": "gaussian"},
            "activation": "sigmoid",
            "postprocessing": postprocessing_text(),
            "lesions": lesions,
            "seconds": round(time.perf_counter() - started, 4),
        }
        return Prediction(probabilities=probs[:, None], labels=labels, record=record)


def postprocessing_text() -> str:
    """The lesion-wise post-processing in one sentence."""
    return (
        f"sigmoid ≥ {THRESHOLD:g}, 26-connected components, components under {MIN_LESION_MM3:g} mm³ "
        "removed; lesion score = highest voxel probability"
    )


def postprocess(probs: NDArray[np.float32], spacing: Sequence[float]) -> tuple[NDArray[np.int32], list[dict[str, Any]]]:
    """Lesion-wise post-processing of a probability map ``(z, y, x)`` with ``spacing`` (x, y, z).

    Example
    -------
    >>> p = np.zeros((8, 8, 8), np.float32); p[2:5, 2:5, 2:5] = 0.9; p[7, 7, 7] = 0.8
    >>> inst, found = postprocess(p, (1.0, 1.0, 1.0))
    >>> len(found), found[0]["voxels"], int(inst.max())
    (1, 27, 1)
    """
    voxel_mm3 = float(np.prod(spacing))
    labelled, n = ndimage.label(probs >= THRESHOLD, structure=np.ones((3, 3, 3), bool))
    instances = np.zeros(probs.shape, np.int32)
    lesions: list[dict[str, Any]] = []
    if n == 0:
        return instances, lesions
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)
    peaks = ndimage.maximum(probs, labelled, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(labelled)
    for k in range(1, n + 1):
        if sizes[k] * voxel_mm3 < MIN_LESION_MM3:
            continue
        box = boxes[k - 1]
        region = labelled[box] == k
        zz, yy, xx = np.nonzero(region)
        instance = len(lesions) + 1
        instances[box][region] = instance
        lesions.append(
            {
                "instance": instance,
                "voxels": int(sizes[k]),
                "volume_ml": round(sizes[k] * voxel_mm3 / 1000, 5),
                "score": round(float(peaks[k - 1]), 6),
                "centre_voxel": [
                    round(float(xx.mean() + box[2].start), 3),
                    round(float(yy.mean() + box[1].start), 3),
                    round(float(zz.mean() + box[0].start), 3),
                ],
                "bbox_voxel": {
                    "min": [box[2].start, box[1].start, box[0].start],
                    "max": [box[2].stop - 1, box[1].stop - 1, box[0].stop - 1],
                },
            }
        )
    return instances, lesions


# ---------------------------------------------------------------------------------------------- training
def case_arrays(case: PhantomCase) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """HU and lesion mask of a phantom case on the model grid, each ``(1, z, y, x)`` float32."""
    shape = model_shape(case.ct.shape, case.grid.spacing)
    hu = resize(case.ct.astype(np.float32), shape)
    mask = (resize(lesion_mask(case.labels).astype(np.float32), shape) >= 0.5).astype(np.float32)
    return hu[None], mask[None]


def _augment(
    hu: NDArray[np.float32], rng: np.random.Generator, recipe: LesionRecipe
) -> tuple[NDArray[np.float32], bool]:
    out = hu + np.float32(rng.uniform(-recipe.hu_shift, recipe.hu_shift))
    sigma = rng.uniform(0.0, recipe.extra_noise_hu)
    out = out + rng.standard_normal(out.shape).astype(np.float32) * np.float32(sigma)
    flip = bool(rng.random() < 0.5)
    return (out[..., ::-1] if flip else out), flip


def train_lesions(
    recipe: LesionRecipe, cases: Sequence[PhantomCase], *, progress: Callable[[int, float], object] | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """Train the 3-D U-Net on ``cases``; returns the network (eval mode) and the training log."""
    from monai.losses import DiceFocalLoss
    from monai.transforms import RandCropByPosNegLabeld
    from monai.transforms.utils import map_binary_to_indices

    watch = Stopwatch()
    with torch_settings(recipe.threads, recipe.seed):
        data = []
        for case in cases:
            hu, mask = case_arrays(case)
            fg, bg = map_binary_to_indices(mask)
            data.append({"image": hu, "label": mask, "fg": fg, "bg": bg})
        prep = watch.read()
        cropper = RandCropByPosNegLabeld(
            keys=["image", "label"],
            label_key="label",
            spatial_size=PATCH,
            pos=recipe.pos,
            neg=recipe.neg,
            num_samples=recipe.samples_per_case,
            fg_indices_key="fg",
            bg_indices_key="bg",
            allow_smaller=True,
        )
        cropper.set_random_state(recipe.seed)
        rng = np.random.default_rng(recipe.seed)
        net = build_network()
        loss_fn = DiceFocalLoss(
            sigmoid=True, batch=True, lambda_dice=recipe.lambda_dice, lambda_focal=recipe.lambda_focal, gamma=2.0
        )

        def batch_loss(model: nn.Module) -> torch.Tensor:
            xs, ys = [], []
            for idx in rng.choice(len(data), size=recipe.cases_per_step, replace=False):
                with warnings.catch_warnings():  # a case without lesions gives background crops only
                    warnings.filterwarnings("ignore", message="Num foregrounds 0", category=UserWarning)
                    crops = cropper(data[int(idx)])
                for crop in crops:
                    img, flip = _augment(np.asarray(crop["image"]), rng, recipe)
                    lab = np.asarray(crop["label"])
                    xs.append(window(img[0]))
                    ys.append(lab[..., ::-1] if flip else lab)
            x = torch.from_numpy(np.ascontiguousarray(np.stack(xs)))
            y = torch.from_numpy(np.ascontiguousarray(np.stack(ys)))
            return loss_fn(model(x), y)

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
    log = {
        "curve": curve,
        "preprocessing": prep,
        "training": watch.read(),
        "patches_per_step": recipe.cases_per_step * recipe.samples_per_case,
    }
    return net, log


# ---------------------------------------------------------------------------------------------- evaluation
def _box(coords_min: Sequence[int], coords_max: Sequence[int]) -> list[float]:
    return [float(v) for v in coords_min] + [float(v) + 1.0 for v in coords_max]


def _case_objects(
    case: PhantomCase, found: list[dict[str, Any]]
) -> tuple[ImageObjects, ImageObjects, NDArray[np.bool_]]:
    refs, big = [], []
    for lesion in case.lesions:
        kk, jj, ii = np.nonzero(case.instances == lesion.instance)
        if kk.size == 0:
            continue
        refs.append(_box((ii.min(), jj.min(), kk.min()), (ii.max(), jj.max(), kk.max())))
        big.append(lesion.diameter_mm >= MIN_REPORTED_DIAMETER_MM)
    dets = [_box(f["bbox_voxel"]["min"], f["bbox_voxel"]["max"]) for f in found]
    scores = [f["score"] for f in found]
    ref = ImageObjects.boxes_from_corners(case.case_id, np.array(refs).reshape(-1, 6))
    det = ImageObjects.boxes_from_corners(case.case_id, np.array(dets).reshape(-1, 6), scores=scores)
    return ref, det, np.array(big, bool)


def evaluate_lesions(
    segmenter: LesionSegmenter,
    cases: Sequence[PhantomCase],
    *,
    seed: int = 0,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Voxel Dice, lesion-wise sensitivity / FPs per case at the operating point, FROC; 95 % CIs over cases.

    A found lesion matches a reference lesion when their boxes overlap with IoU ≥ :data:`MATCH_IOU`
    (aimd.metrics matching rule). Sensitivity counts reference lesions ≥ 5 mm; a finding that matches
    a smaller lesion is neither a hit nor a false positive (it is left out, as an ignore region).
    """
    watch = Stopwatch()
    dices, hits, n_big, fps = [], [], [], []
    precisions: list[float] = []
    recalls: list[float] = []
    hd95s: list[float] = []
    refs_big: list[ImageObjects] = []
    dets_kept: list[ImageObjects] = []
    per_case = []
    for i, case in enumerate(cases):
        vol = case.grid.volume(case.ct, modality="CT")
        instances, found = segmenter.find_lesions(vol)
        truth = case.instances > 0
        pred = instances > 0
        case_dice = dice(truth, pred) if truth.any() else None
        if truth.any():
            precisions.append(precision(truth, pred) if pred.any() else 0.0)
            recalls.append(recall(truth, pred))
            sx, sy, sz = case.grid.spacing
            if pred.any():
                hd95s.append(hausdorff_distance_95(truth, pred, (sz, sy, sx)))
        ref, det, big = _case_objects(case, found)
        matched = match_image(ref, det, criterion="iou", threshold=MATCH_IOU).get(1)
        det_to_ref = matched.det_to_ref if matched is not None else np.full(len(det), -1)
        keep = np.array([r < 0 or big[r] for r in det_to_ref], bool) if len(det) else np.zeros(0, bool)
        refs_big.append(ref.subset(big) if len(ref) else ref)
        dets_kept.append(det.subset(keep) if len(det) else det)
        tp = sum(1 for r in det_to_ref if r >= 0 and big[r])
        fp = int(np.count_nonzero(det_to_ref < 0))
        hits.append(tp)
        n_big.append(int(big.sum()))
        fps.append(fp)
        if case_dice is not None:
            dices.append(case_dice)
        per_case.append(
            {
                "case": case.case_id,
                "site": case.site.site_id,
                "dice": case_dice,
                "lesions": len(case.lesions),
                "lesions_5mm": int(big.sum()),
                "found": len(found),
                "hits_5mm": tp,
                "false_positives": fp,
            }
        )
        if progress:
            progress(i + 1)
    curve = froc(refs_big, dets_kept, criterion="iou", threshold=MATCH_IOU, rates=(0.125, 0.25, 0.5, 1, 2, 4))
    at_one = froc_ci(refs_big, dets_kept, rate=1.0, seed=seed, criterion="iou", threshold=MATCH_IOU)
    n_cases = len(cases)
    return {
        "cases": n_cases,
        "sites": sorted({c.site.site_id for c in cases}),
        "lesions_5mm": int(sum(n_big)),
        "lesions_all": int(sum(len(c.lesions) for c in cases)),
        "dice": mean_ci(dices, seed=seed),
        "dice_unit": "per case with at least one lesion: voxel Dice of the post-processed mask vs all lesion voxels",
        "voxel_precision": mean_ci(precisions, seed=seed),
        "voxel_recall": mean_ci(recalls, seed=seed),
        "hd95_mm": mean_ci(hd95s, seed=seed),
        "hd95_unit": "per case with lesions found and present (mm)",
        "sensitivity_5mm": ratio_ci(np.array(hits), np.array(n_big), seed=seed),
        "fp_per_case": ratio_ci(np.array(fps), np.ones(n_cases), seed=seed),
        "operating_point": f"probability ≥ {THRESHOLD:g}, components ≥ {MIN_LESION_MM3:g} mm³",
        "froc": curve.to_dict(),
        "froc_sensitivity_at_1fp": at_one,
        "matching": f"3-D box IoU ≥ {MATCH_IOU:g}; findings on lesions < {MIN_REPORTED_DIAMETER_MM:g} mm ignored",
        "per_case": per_case,
        "seconds": watch.read(),
    }


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers of :func:`evaluate_lesions` (with their CIs) for records and the zoo."""
    keep = ("estimate", "ci_low", "ci_high", "n")
    return {
        key: {k: metrics[key].get(k) for k in keep}
        for key in ("dice", "sensitivity_5mm", "fp_per_case", "froc_sensitivity_at_1fp")
    }


RECIPE = LesionRecipe
TRAIN = train_lesions
PREDICTOR = LesionSegmenter
EVALUATE = evaluate_lesions
SUMMARY = summary

__all__ = [
    "EVALUATE",
    "PREDICTOR",
    "RECIPE",
    "SUMMARY",
    "TRAIN",
    "INPUT_SPEC",
    "OUTPUT_SPEC",
    "PATCH",
    "SPACING",
    "LesionRecipe",
    "LesionSegmenter",
    "build_network",
    "case_arrays",
    "evaluate_lesions",
    "postprocess",
    "summary",
    "train_lesions",
    "window",
]
