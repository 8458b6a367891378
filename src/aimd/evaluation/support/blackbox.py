"""000 §6.3.8 black-box attack: ART's Square Attack through the model's output probabilities only.

The attack sees the model as a score oracle (:class:`QueryOracle`): images in, per-pixel
probabilities out, no gradients, no weights, so it runs on any predictor (TorchScript, ONNX,
MONAI bundle). ART's ``SquareAttack`` (L∞, random square updates accepted when they lower a
loss) is driven by a segmentation loss, :func:`margin_loss`: the mean over pixels of each
pixel's correct-class margin in logit space, clipped at zero — the per-pixel form of ART's own
classification margin (correct-class logit minus the best other one), so pixels already flipped
stop counting and the search spends its queries on the pixels still right. A slice counts as
adversarial once no pixel is labelled correctly any more.

The oracle counts every image the model evaluates (its "queries") and answers repeated images
from a small cache, as an attacker would, so the reported count is the model evaluations the
attack really cost.

Example
-------
>>> import numpy as np
>>> probs = np.array([[0.9, 0.2, 0.4]], np.float32)            # one image, three pixels (sigmoid)
>>> truth = np.array([[1.0, 0.0, 1.0]], np.float32)
>>> np.round(pixel_margins(probs, truth, channels=1, activation="sigmoid"), 3).tolist()
[[2.197, 1.386, -0.405]]
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.models.predictor import BasePredictor

_TINY = 1e-7


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    q = np.clip(p, _TINY, 1.0 - _TINY)
    return np.asarray(np.log(q) - np.log1p(-q))


def pixel_margins(
    probs: NDArray[np.float32], targets: NDArray[np.float32], *, channels: int, activation: str, threshold: float = 0.5
) -> NDArray[np.float64]:
    """Per-pixel margin of the correct label in logit space: ``> 0`` where the pixel is labelled right.

    Parameters
    ----------
    probs, targets:
        Flattened ``(n, channels · pixels)`` probabilities and targets, in the layout of
        :func:`aimd.evaluation.adversarial.flat_targets` (sigmoid: 0/1 per pixel; softmax: one-hot,
        channel-major).
    channels, activation, threshold:
        The model's output channels, activation and sigmoid decision threshold.

    Returns
    -------
    ndarray
        ``(n, pixels)``; sigmoid: ``±(logit(p) − logit(threshold))``; softmax: ``log p_true − max_other log p``.

    Example
    -------
    >>> p = np.array([[0.7, 0.1, 0.2, 0.3, 0.9, 0.8]], np.float32)   # 2 classes × 3 pixels
    >>> t = np.array([[1, 0, 1, 0, 1, 0]], np.float32)               # truth: class 0, 1, 0
    >>> (pixel_margins(p, t, channels=2, activation="softmax") > 0).tolist()
    [[True, True, False]]
    """
    n = probs.shape[0]
    p = probs.astype(np.float64).reshape(n, -1)
    if activation == "sigmoid":
        sign = np.where(targets.reshape(n, -1) > 0, 1.0, -1.0)
        return np.asarray(sign * (_logit(p) - float(_logit(np.array([threshold]))[0])))
    logp = np.log(np.clip(p.reshape(n, channels, -1), _TINY, 1.0))
    truth = targets.reshape(n, channels, -1).argmax(axis=1)
    own = np.take_along_axis(logp, truth[:, None, :], axis=1)[:, 0]
    others = logp.copy()
    np.put_along_axis(others, truth[:, None, :], -np.inf, axis=1)
    return np.asarray(own - others.max(axis=1))


def margin_loss(
    probs: NDArray[np.float32], targets: NDArray[np.float32], *, channels: int, activation: str, threshold: float = 0.5
) -> NDArray[np.float64]:
    """Per-image attack loss (lower is better for the attacker): mean of ``max(margin, 0)`` over pixels.

    Example
    -------
    >>> probs = np.array([[0.9, 0.2, 0.4]], np.float32)
    >>> truth = np.array([[1.0, 0.0, 1.0]], np.float32)
    >>> round(float(margin_loss(probs, truth, channels=1, activation="sigmoid")[0]), 4)
    1.1945
    """
    margins = pixel_margins(probs, targets, channels=channels, activation=activation, threshold=threshold)
    return np.asarray(np.maximum(margins, 0.0).mean(axis=1))


class QueryOracle:
    """Score-based access to ``predictor``: flattened probabilities for a batch, each model evaluation counted.

    Parameters
    ----------
    predictor:
        The model under attack.
    cache_size:
        Most recent distinct images whose answers are kept, so an image asked again costs no query.

    Example
    -------
    >>> import torch
    >>> from aimd.models import InputSpec, OutputSpec, TorchModulePredictor
    >>> net = torch.nn.Conv2d(1, 1, 1)
    >>> pred = TorchModulePredictor(net, InputSpec(modality="CT", channels=1, patch_size=(16, 16)),
    ...                             OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid"))
    >>> oracle = QueryOracle(pred, cache_size=8)
    >>> x = np.zeros((2, 1, 16, 16), np.float32); x[1] = 0.5
    >>> _ = oracle(x); _ = oracle(x[::-1])
    >>> oracle.queries, oracle.requests
    (2, 4)
    """

    def __init__(self, predictor: BasePredictor, cache_size: int) -> None:
        self.predictor = predictor
        self.cache_size = max(1, int(cache_size))
        self.queries = 0
        self.requests = 0
        self._cache: OrderedDict[bytes, NDArray[np.float32]] = OrderedDict()

    def __call__(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        batch = np.ascontiguousarray(images, dtype=np.float32)
        keys = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in batch]
        self.requests += len(keys)
        todo: dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._cache and key not in todo:
                todo[key] = i
        if todo:
            probs = self.predictor.predict(batch[list(todo.values())])
            self.queries += len(todo)
            for j, key in enumerate(todo):
                self._cache[key] = probs[j].reshape(-1)
        out = np.stack([self._cache[key] for key in keys]).astype(np.float32)
        for key in keys:
            self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out


@dataclass(frozen=True)
class BlackBoxResult:
    """Adversarial images of one black-box run and what they cost."""

    adversarial: NDArray[np.float32]
    queries: int
    requests: int

    @property
    def queries_per_image(self) -> float:
        """Model evaluations per attacked image."""
        return round(self.queries / max(1, self.adversarial.shape[0]), 3)


@contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator (ART's attacks draw from it) and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def square_attack(
    predictor: BasePredictor,
    images: NDArray[np.float32],
    targets: NDArray[np.float32],
    eps: float,
    *,
    iterations: int = 40,
    p_init: float = 0.3,
    seed: int = 0,
) -> BlackBoxResult:
    """Untargeted L∞ Square Attack (ART) on ``images`` through ``predictor``'s probabilities only.

    Parameters
    ----------
    predictor:
        The model; only ``predict`` is called.
    images:
        Preprocessed inputs ``(n, c, h, w)`` in [0, 1].
    targets:
        Flattened reference labels (:func:`aimd.evaluation.adversarial.flat_targets`).
    eps:
        L∞ budget in normalised input units; the result stays within it and within [0, 1].
    iterations:
        Square updates (each costs one query per image still attackable).
    p_init:
        Initial share of the image a square covers (ART's schedule shrinks it as the run goes on).
    seed:
        Seed of the random squares.

    Example
    -------
    >>> import torch
    >>> from aimd.models import InputSpec, OutputSpec, TorchModulePredictor
    >>> net = torch.nn.Conv2d(1, 1, 1)
    >>> with torch.no_grad():
    ...     _ = net.weight.fill_(20.0); _ = net.bias.fill_(-10.0)
    >>> pred = TorchModulePredictor(net, InputSpec(modality="CT", channels=1, patch_size=(16, 16)),
    ...                             OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid"))
    >>> x = np.full((2, 1, 16, 16), 0.2, np.float32); x[:, :, 4:12, 4:12] = 0.8
    >>> y = (x > 0.5).reshape(2, -1).astype(np.float32)
    >>> res = square_attack(pred, x, y, 0.1, iterations=5)
    >>> bool(np.abs(res.adversarial - x).max() <= 0.1 + 1e-6), res.queries > 0
    (True, True)
    """
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    if eps <= 0:
        raise InvalidInputError(
            f"black-box budget ε must be > 0, got {eps}",
            where="adversarial.epsilons",
            hint="list positive budgets in normalised input units",
        )
    if min(images.shape[2:]) < 2:
        raise InvalidInputError(
            f"images of size {tuple(images.shape[2:])} are too small for square updates",
            where="data",
            hint="attack images of at least 2×2 pixels",
        )
    spec = predictor.output_spec
    oracle = QueryOracle(predictor, cache_size=4 * len(images))
    flat = int(targets.shape[1])
    estimator = BlackBoxClassifierNeuralNetwork(
        oracle, input_shape=tuple(images.shape[1:]), nb_classes=flat, channels_first=True, clip_values=(0.0, 1.0)
    )

    def loss(x: NDArray[np.float32], y: NDArray[np.float32]) -> NDArray[np.float64]:
        return margin_loss(oracle(x), y, channels=spec.channels, activation=spec.activation, threshold=spec.threshold)

    def fooled(y_pred: NDArray[np.float32], y: NDArray[np.float32]) -> NDArray[np.bool_]:
        margins = pixel_margins(y_pred, y, channels=spec.channels, activation=spec.activation, threshold=spec.threshold)
        return np.asarray((margins <= 0).all(axis=1))

    attack: Any = SquareAttack(
        estimator,
        norm=np.inf,
        eps=float(eps),
        max_iter=int(iterations),
        p_init=float(p_init),
        nb_restarts=1,
        batch_size=max(1, len(images)),
        loss=loss,
        adv_criterion=fooled,
        verbose=False,
    )
    with seeded_numpy(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        adv = attack.generate(x=np.ascontiguousarray(images, dtype=np.float32), y=targets.astype(np.float32))
    adv = np.clip(np.clip(adv, images - eps, images + eps), 0.0, 1.0).astype(np.float32)
    return BlackBoxResult(adversarial=adv, queries=oracle.queries, requests=oracle.requests)


__all__ = ["BlackBoxResult", "QueryOracle", "margin_loss", "pixel_margins", "seeded_numpy", "square_attack"]
