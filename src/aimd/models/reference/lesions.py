"""``device-lesions``: CT lesion segmentation (lung nodules incl. ground-glass, liver tumours; 003 §4.2.2).

* **Input**: the CT in HU, resampled to :data:`SPACING` (x, y, z mm) and mapped through two windows
  (lung −600/1500 and a narrow liver window 60/200 HU) into two channels in [0, 1].
* **Network**: MONAI 3-D U-Net (8…64 channels, one residual unit per level, instance norm).
* **Training**: 3-D patches :data:`PATCH` drawn by MONAI ``RandCropByPosNegLabeld`` (lesion-centred
  and background patches in a fixed ratio), HU-offset, extra-noise and left–right-flip augmentation,
  Dice + focal loss, AdamW with warm-up and cosine decay, a fixed step count (no test data is looked at).
* **Inference**: Gaussian-weighted sliding window over the resampled volume, sigmoid, resampled back
  to the input grid.
* **Lesion-wise post-processing**: voxels with probability ≥ the operating threshold, 26-connected
  components, components smaller than the minimum lesion volume dropped; each lesion scores its
  highest voxel probability. The operating point (threshold, minimum volume) is chosen on a validation
  set of the training sites (:mod:`aimd.models.reference.operating_point`) and stored in the shipped
  run record, which :func:`~aimd.models.reference.load_reference` passes to the predictor; a record
  without one falls back to :data:`THRESHOLD` and :data:`MIN_LESION_MM3`.

Evaluation (:func:`~aimd.models.reference.lesion_metrics.evaluate_lesions`) reports voxel Dice per case,
lesion-wise sensitivity and false positives per case at the operating point and the FROC (aimd.metrics),
with bootstrap CIs over cases.

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

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.models.predictor import Prediction
from aimd.models.preprocess import check_volume
from aimd.models.reference.common import (
    RecipeSettings,
    Stopwatch,
    run_steps,
    torch_settings,
)
from aimd.models.reference.lesion_metrics import (
    MATCH_IOU,
    MIN_REPORTED_DIAMETER_MM,
    CaseMatch,
    evaluate_lesions,
    match_case,
    reference_lesions,
    summary,
)
from aimd.models.specs import InputSpec, Intensity, OutputSpec
from aimd.phantoms.case import PhantomCase

SPACING = (0.8, 0.8, 1.6)
WINDOWS = ((-600.0, 1500.0), (60.0, 200.0))
PATCH = (32, 48, 48)
THRESHOLD = 0.5
MIN_LESION_MM3 = 15.0
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
        self.set_operating_point(self.metadata.get("operating_point"))

    def set_operating_point(self, point: dict[str, Any] | None) -> None:
        """Use ``point`` (``threshold``, ``min_lesion_mm3``, as in a run record); None → the fallback 0.5 / 15 mm³.

        Example
        -------
        >>> seg = LesionSegmenter(build_network(), {"operating_point": {"threshold": 0.3, "min_lesion_mm3": 8}})
        >>> seg.threshold, seg.min_lesion_mm3, seg.output_spec.threshold
        (0.3, 8.0, 0.3)
        >>> seg.set_operating_point(None); seg.threshold, seg.metadata["operating_point"]["source"]
        (0.5, 'fallback: the run record has no operating point')
        """
        if point is None:
            point = {
                "threshold": THRESHOLD,
                "min_lesion_mm3": MIN_LESION_MM3,
                "source": "fallback: the run record has no operating point",
            }
        self.threshold = float(point["threshold"])
        self.min_lesion_mm3 = float(point["min_lesion_mm3"])
        if not 0.0 < self.threshold < 1.0 or self.min_lesion_mm3 < 0:
            raise InvalidInputError(
                f"operating point out of range: threshold {self.threshold}, minimum {self.min_lesion_mm3} mm³",
                where=str(self.metadata.get("run_record", "operating_point")),
                hint="threshold in (0, 1), minimum lesion volume >= 0; re-run the operating point selection",
            )
        self._output_spec = self._output_spec.model_copy(update={"threshold": self.threshold})
        self.metadata["operating_point"] = dict(point)

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
        return self.postprocess(probs, volume.spacing)

    def postprocess(
        self, probs: NDArray[np.float32], spacing: Sequence[float]
    ) -> tuple[NDArray[np.int32], list[dict[str, Any]]]:
        """:func:`postprocess` at this predictor's operating point."""
        return postprocess(probs, spacing, threshold=self.threshold, min_lesion_mm3=self.min_lesion_mm3)

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
        instances, lesions = self.postprocess(probs, volume.spacing)
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
            "postprocessing": postprocessing_text(self.threshold, self.min_lesion_mm3),
            "lesions": lesions,
            "seconds": round(time.perf_counter() - started, 4),
        }
        return Prediction(probabilities=probs[:, None], labels=labels, record=record)


def postprocessing_text(threshold: float = THRESHOLD, min_lesion_mm3: float = MIN_LESION_MM3) -> str:
    """The lesion-wise post-processing in one sentence."""
    return (
        f"sigmoid ≥ {threshold:g}, 26-connected components, components under {min_lesion_mm3:g} mm³ "
        "removed; lesion score = highest voxel probability"
    )


def postprocess(
    probs: NDArray[np.float32],
    spacing: Sequence[float],
    *,
    threshold: float = THRESHOLD,
    min_lesion_mm3: float = MIN_LESION_MM3,
) -> tuple[NDArray[np.int32], list[dict[str, Any]]]:
    """Lesion-wise post-processing of a probability map ``(z, y, x)`` with ``spacing`` (x, y, z).

    Example
    -------
    >>> p = np.zeros((8, 8, 8), np.float32); p[2:5, 2:5, 2:5] = 0.9; p[7, 7, 7] = 0.8
    >>> inst, found = postprocess(p, (1.0, 1.0, 1.0))
    >>> len(found), found[0]["voxels"], int(inst.max())
    (1, 27, 1)
    """
    voxel_mm3 = float(np.prod(spacing))
    labelled, n = ndimage.label(probs >= threshold, structure=np.ones((3, 3, 3), bool))
    instances = np.zeros(probs.shape, np.int32)
    lesions: list[dict[str, Any]] = []
    if n == 0:
        return instances, lesions
    sizes = np.bincount(labelled.ravel(), minlength=n + 1)
    peaks = ndimage.maximum(probs, labelled, index=np.arange(1, n + 1))
    boxes = ndimage.find_objects(labelled)
    for k in range(1, n + 1):
        if sizes[k] * voxel_mm3 < min_lesion_mm3:
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


RECIPE = LesionRecipe
TRAIN = train_lesions
PREDICTOR = LesionSegmenter
EVALUATE = evaluate_lesions
SUMMARY = summary

__all__ = [
    "EVALUATE",
    "MATCH_IOU",
    "MIN_REPORTED_DIAMETER_MM",
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
    "CaseMatch",
    "case_arrays",
    "evaluate_lesions",
    "match_case",
    "postprocess",
    "reference_lesions",
    "summary",
    "train_lesions",
    "window",
]
