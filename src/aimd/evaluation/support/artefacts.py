"""Image artefacts for robustness (000 §5.2.6 h, A.12.2 a): TorchIO transforms at graded severities.

Sampling is separate from applying (the TorchIO template): :func:`artefact_parameters` gives
the fixed magnitudes of an artefact at a severity, :func:`artefact_transform` the TorchIO transform
for 2-D slices or 3-D volumes, :func:`apply_artefact` applies it per image with a recorded seed.

Example
-------
>>> artefact_parameters("noise", 0.5)
{'std': 0.05}
>>> type(artefact_transform("blur", 0.5, dims=3)).__name__
'RandomBlur'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError

ARTEFACTS = ("noise", "bias_field", "motion", "ghosting", "spike", "blur")


def artefact_parameters(name: str, severity: float) -> dict[str, Any]:
    """TorchIO parameters of ``name`` at ``severity`` in (0, 1] (images in [0, 1], 1 mm pixels)."""
    if not 0 < severity <= 1:
        raise InvalidInputError(
            f"severity must be in (0, 1], got {severity}",
            where="robustness.severities",
            hint="use graded levels such as 0.25, 0.5, 1.0",
        )
    s = float(severity)
    table: dict[str, dict[str, Any]] = {
        "noise": {"std": round(0.1 * s, 6)},
        "bias_field": {"coefficients": round(0.6 * s, 6), "order": 3},
        "motion": {"degrees": round(10 * s, 6), "translation": round(6 * s, 6), "num_transforms": 2},
        "ghosting": {"num_ghosts": 4, "intensity": round(0.8 * s, 6)},
        "spike": {"num_spikes": 1, "intensity": round(1.5 * s, 6)},
        "blur": {"std": round(2.0 * s, 6)},
    }
    if name not in table:
        raise InvalidInputError(
            f"unknown artefact {name!r}", where="robustness.artefacts", hint=f"choose from {sorted(table)}"
        )
    return table[name]


def artefact_transform(name: str, severity: float, *, dims: int = 2) -> Any:
    """The TorchIO transform for ``name`` at ``severity`` (fixed magnitude, random direction/phase).

    ``dims=2`` acts in-plane on a slice stored as a one-voxel-thick volume; ``dims=3`` along every axis.
    """
    import torchio as tio

    p = artefact_parameters(name, severity)
    if name == "noise":
        return tio.RandomNoise(mean=0.0, std=(p["std"], p["std"]))
    if name == "bias_field":
        return tio.RandomBiasField(coefficients=(p["coefficients"], p["coefficients"]), order=p["order"])
    if name == "motion":
        return tio.RandomMotion(
            degrees=(p["degrees"], p["degrees"]),
            translation=(p["translation"], p["translation"]),
            num_transforms=p["num_transforms"],
        )
    if name == "ghosting":
        axes = (0, 1) if dims == 2 else (0, 1, 2)
        return tio.RandomGhosting(
            num_ghosts=(p["num_ghosts"], p["num_ghosts"]), axes=axes, intensity=(p["intensity"], p["intensity"])
        )
    if name == "spike":
        return tio.RandomSpike(
            num_spikes=(p["num_spikes"], p["num_spikes"]), intensity=(p["intensity"], p["intensity"])
        )
    std = p["std"]
    return tio.RandomBlur(std=(std, std, std, std, 0.0, 0.0) if dims == 2 else (std, std))


def apply_artefact(images: NDArray[np.float32], name: str, severity: float, *, seed: int) -> NDArray[np.float32]:
    """``images`` ``(n, c, h, w)`` with the artefact applied per image (seed ``seed + i``), clipped to [0, 1].

    Example
    -------
    >>> x = np.full((2, 1, 16, 16), 0.5, np.float32)
    >>> y = apply_artefact(x, "noise", 1.0, seed=0)
    >>> bool(0.05 < y.std() < 0.15), y.shape
    (True, (2, 1, 16, 16))
    """
    import torchio as tio

    transform = artefact_transform(name, severity)
    out = np.empty_like(images, dtype=np.float32)
    for i in range(images.shape[0]):
        torch.manual_seed(seed + i)
        tensor = torch.from_numpy(np.ascontiguousarray(images[i], dtype=np.float32))[..., None]
        image = tio.ScalarImage(tensor=tensor)
        out[i] = transform(image).data[..., 0].numpy()
    return np.clip(out, 0.0, 1.0)


__all__ = ["ARTEFACTS", "apply_artefact", "artefact_parameters", "artefact_transform"]
