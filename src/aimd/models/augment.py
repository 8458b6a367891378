"""Training augmentation with a record of every applied step (000 §4.4.2, 003 §2.2.3).

One class per transform, each with the same two steps: ``make_params`` samples the random
parameters from a seeded generator, ``apply`` applies them to an image (and its target, for spatial
transforms). :class:`Augmenter` runs a list of them per item and counts what it applied, so the
training record states the augmentation actually used, not only the configuration.

Transforms: flips (000 B.1.5.2), Gaussian noise (B.1.5.2), intensity shift (003 §2.2.3 "密度偏移",
in [0, 1] units) and elastic deformation (003 §2.2.3 "弹性变形", α displacement in pixels, σ
smoothing).

Example
-------
>>> import numpy as np
>>> aug = Augmenter([RandomFlip(axes=(1,), p=1.0)], seed=0)
>>> img, tgt = aug(np.arange(4, dtype=np.float32).reshape(1, 1, 4), np.arange(4).reshape(1, 4))
>>> img.ravel().tolist(), aug.counts
([3.0, 2.0, 1.0, 0.0], {'flip': 1})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter, map_coordinates

from aimd.core.errors import InvalidInputError


@dataclass
class Transform:
    """Base: probability ``p`` and the template ``make_params`` → ``apply``."""

    p: float = 0.5
    name = "transform"
    spatial = False

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise InvalidInputError(
                f"augmentation probability must be in [0, 1], got {self.p}",
                where=f"augment.{self.name}.p",
                hint="use e.g. 0.5",
            )

    def make_params(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        raise NotImplementedError

    def apply(
        self, image: NDArray[np.float32], target: NDArray[Any] | None, params: dict[str, Any]
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Parameters for the training record."""
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class RandomFlip(Transform):
    """Flip along each of ``axes`` (of the ``(h, w)`` image) with probability 0.5 each."""

    axes: tuple[int, ...] = (0, 1)
    name = "flip"
    spatial = True

    def make_params(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        axes = [a for a in self.axes if rng.random() < 0.5] or [self.axes[int(rng.integers(len(self.axes)))]]
        return {"axes": axes}

    def apply(
        self, image: NDArray[np.float32], target: NDArray[Any] | None, params: dict[str, Any]
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        for axis in params["axes"]:
            image = np.flip(image, axis=axis + 1)
            if target is not None:
                target = np.flip(target, axis=axis)
        return np.ascontiguousarray(image), None if target is None else np.ascontiguousarray(target)


@dataclass
class RandomNoise(Transform):
    """Add Gaussian noise with standard deviation drawn from ``[0, std]`` (image units)."""

    std: float = 0.03
    name = "gaussian_noise"

    def make_params(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        sigma = float(rng.uniform(0, self.std))
        return {"std": sigma, "noise": rng.normal(0.0, sigma, size=shape).astype(np.float32)}

    def apply(
        self, image: NDArray[np.float32], target: NDArray[Any] | None, params: dict[str, Any]
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        return np.clip(image + params["noise"], 0.0, 1.0).astype(np.float32), target


@dataclass
class RandomIntensityShift(Transform):
    """Add one offset drawn from ``[-offset, offset]`` to the whole image (scanner drift)."""

    offset: float = 0.05
    name = "intensity_shift"

    def make_params(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"offset": float(rng.uniform(-self.offset, self.offset))}

    def apply(
        self, image: NDArray[np.float32], target: NDArray[Any] | None, params: dict[str, Any]
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        return np.clip(image + np.float32(params["offset"]), 0.0, 1.0).astype(np.float32), target


@dataclass
class RandomElastic(Transform):
    """Elastic deformation: random displacement fields smoothed by a Gaussian of ``sigma`` pixels and
    scaled to at most ``alpha`` pixels; images interpolated linearly, targets by nearest neighbour."""

    alpha: float = 4.0
    sigma: float = 4.0
    name = "elastic"
    spatial = True

    def make_params(self, rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Any]:
        h, w = shape[-2:]
        fields = []
        for _ in range(2):
            field = gaussian_filter(rng.uniform(-1, 1, size=(h, w)), self.sigma, mode="constant")
            peak = float(np.abs(field).max()) or 1.0
            fields.append(field / peak * float(rng.uniform(0, self.alpha)))
        return {"dy": fields[0], "dx": fields[1]}

    def apply(
        self, image: NDArray[np.float32], target: NDArray[Any] | None, params: dict[str, Any]
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        h, w = image.shape[-2:]
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        coords = np.stack([yy + params["dy"], xx + params["dx"]])
        warped = np.stack([map_coordinates(ch, coords, order=1, mode="nearest") for ch in image]).astype(np.float32)
        if target is not None:
            target = map_coordinates(target, coords, order=0, mode="nearest").astype(target.dtype)
        return warped, target


AUGMENTATIONS: dict[str, type[Transform]] = {
    "flip": RandomFlip,
    "noise": RandomNoise,
    "shift": RandomIntensityShift,
    "elastic": RandomElastic,
}


def build_augmentations(names: list[str] | tuple[str, ...], *, segmentation: bool) -> list[Transform]:
    """Transforms by short name (``flip``, ``noise``, ``shift``, ``elastic``) with aimd's defaults.

    Example
    -------
    >>> [t.name for t in build_augmentations(["flip", "noise"], segmentation=True)]
    ['flip', 'gaussian_noise']
    """
    out: list[Transform] = []
    for name in names:
        if name not in AUGMENTATIONS:
            raise InvalidInputError(
                f"unknown augmentation {name!r}", where="--augment", hint=f"use any of {sorted(AUGMENTATIONS)}"
            )
        cls = AUGMENTATIONS[name]
        out.append(RandomFlip(axes=(0, 1) if segmentation else (1,)) if cls is RandomFlip else cls())
    return out


class Augmenter:
    """Apply ``transforms`` to each item of a batch with probability ``p`` each; count applications."""

    def __init__(self, transforms: list[Transform], seed: int) -> None:
        self.transforms = transforms
        self.rng = np.random.default_rng(seed)
        self.counts: dict[str, int] = {t.name: 0 for t in transforms}

    def __call__(
        self, image: NDArray[np.float32], target: NDArray[Any] | None
    ) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
        for t in self.transforms:
            if self.rng.random() < t.p:
                image, target = t.apply(image, target, t.make_params(self.rng, image.shape))
                self.counts[t.name] += 1
        return image, target

    def batch(self, images: NDArray[np.float32], targets: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[Any]]:
        """Augment a batch item by item (classification targets pass through)."""
        out_i, out_t = [], []
        spatial_target = targets.ndim == images.ndim - 1
        for img, tgt in zip(images, targets, strict=True):
            a, b = self(img, tgt if spatial_target else None)
            out_i.append(a)
            out_t.append(b if spatial_target else tgt)
        return np.stack(out_i), np.stack(out_t)

    def record(self) -> list[dict[str, Any]]:
        """Configuration of each transform and how many times it was applied."""
        return [{"name": t.name, **t.config(), "applied": self.counts[t.name]} for t in self.transforms]


__all__ = [
    "AUGMENTATIONS",
    "Augmenter",
    "RandomElastic",
    "RandomFlip",
    "RandomIntensityShift",
    "RandomNoise",
    "Transform",
    "build_augmentations",
]
