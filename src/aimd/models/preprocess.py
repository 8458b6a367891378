"""Check a :class:`Volume` against a model's :class:`InputSpec` and preprocess it (003 §2.2).

Checking comes first and never converts: a volume of the wrong modality, or whose in-plane
spacing is far from the training spacing, is rejected with an error naming the fix. Only the
preprocessing the spec declares is applied: the intensity mapping to [0, 1] (window for CT,
bit-depth scaling for X-ray, 003 §2.2.1–§2.2.2) and, when declared, a resize of each image.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> from aimd.models.specs import InputSpec, Intensity
>>> spec = InputSpec(modality="CT", intensity=Intensity(method="window", windows=((40, 400),)))
>>> vol = Volume(np.full((2, 4, 4), 40, np.int16), modality="CT")
>>> preprocess_volume(vol, spec).shape, float(preprocess_volume(vol, spec).max())
((2, 1, 4, 4), 0.5)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume
from aimd.imaging.windowing import apply_window, minmax
from aimd.models.specs import InputSpec


def volume_modality(volume: Volume, override: str | None = None) -> str | None:
    """The modality of ``volume``: ``override``, else ``volume.modality``, else ``metadata['modality']``."""
    value = override or volume.modality or volume.metadata.get("modality")
    return str(value).upper() if value else None


def check_volume(volume: Volume, spec: InputSpec, *, modality: str | None = None, where: str = "input") -> None:
    """Raise :class:`InvalidInputError` when ``volume`` does not fit ``spec``.

    Parameters
    ----------
    volume:
        The image to check.
    spec:
        The model's input spec.
    modality:
        The modality to assume when the file carries none (NIfTI); a modality the volume does
        carry always wins.
    where:
        File or name reported in errors.

    Example
    -------
    >>> import numpy as np
    >>> from aimd.imaging.volume import Volume
    >>> from aimd.models.specs import InputSpec
    >>> try:
    ...     check_volume(Volume(np.zeros((1, 8, 8)), modality="MR"), InputSpec(modality="CT"))
    ... except InvalidInputError as err:
    ...     print(err.message)
    model expects CT images, got MR
    """
    found = volume_modality(volume) or (modality.upper() if modality else None)
    if found is None:
        raise InvalidInputError(
            f"the image carries no modality; the model expects {spec.modality}",
            where=where,
            hint=f"pass modality='{spec.modality}' (CLI: --modality "
            f"{spec.modality}) if the image really is {spec.modality}",
        )
    if found != spec.modality:
        raise InvalidInputError(
            f"model expects {spec.modality} images, got {found}",
            where=where,
            hint=f"use a model trained on {found}, or pass a {spec.modality} image",
        )
    if spec.spacing_mm is not None:
        for axis, got, want in zip("xy", volume.spacing[:2], spec.spacing_mm, strict=True):
            if abs(got - want) > spec.spacing_tolerance * want:
                raise InvalidInputError(
                    f"pixel spacing {axis}={got:.3g} mm is outside the model's range "
                    f"{want:.3g} mm ± {spec.spacing_tolerance:.0%}",
                    where=where,
                    hint=f"resample to {want:.3g} mm with aimd.imaging.resample.resample_to_spacing",
                )
    if volume.array.dtype.kind not in "iuf" or (volume.array.dtype.kind == "f" and "float" not in spec.raw_dtypes):
        raise InvalidInputError(
            f"image data type {volume.array.dtype} is not one of {list(spec.raw_dtypes)}",
            where=where,
            hint="pass integer or floating-point pixel data",
        )


def intensity_to_unit(volume: Volume, spec: InputSpec) -> NDArray[np.float32]:
    """Apply the spec's intensity mapping; returns float32 ``(z, channels, y, x)`` in [0, 1].

    Windows give one channel each; the other methods give one channel, repeated to
    ``spec.channels``.
    """
    method = spec.intensity.method
    if method == "window":
        return np.stack([apply_window(volume.array, c, w) for c, w in spec.intensity.windows], axis=1)
    if method == "bit_depth":
        unit = _bit_depth_unit(volume, spec.intensity.bits)
    elif method == "minmax":
        unit = np.stack([minmax(s) for s in volume.array]).astype(np.float32)
    else:
        unit = np.asarray(volume.array, dtype=np.float32)
    return np.repeat(unit[:, None], spec.channels, axis=1)


def _bit_depth_unit(volume: Volume, bits: int | None) -> NDArray[np.float32]:
    """Divide by the largest stored value (``bits`` or the image's BitsStored); invert MONOCHROME1."""
    if bits is None:
        stored = volume.metadata.get("bits_stored")
        if isinstance(stored, int) and stored > 0:
            bits = stored
        elif volume.array.dtype.kind in "iu":
            bits = volume.array.dtype.itemsize * 8
        else:
            raise InvalidInputError(
                "cannot tell the bit depth of a floating-point image",
                where="metadata.bits_stored",
                hint="set metadata['bits_stored'] or declare Intensity(bits=...)",
            )
    out = np.clip(volume.array.astype(np.float32) / np.float32(2**bits - 1), 0.0, 1.0)
    if str(volume.metadata.get("photometric", "")).upper() == "MONOCHROME1":
        out = 1.0 - out
    return out.astype(np.float32)


def resize_slices(array: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.float32]:
    """Bilinear (antialiased) resize of ``(n, c, h, w)`` images to ``size``."""
    if tuple(array.shape[-2:]) == tuple(size):
        return array
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    out = F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return out.numpy().astype(np.float32)


def preprocess_volume(volume: Volume, spec: InputSpec) -> NDArray[np.float32]:
    """Intensity mapping plus declared resize: ``(z, channels, h, w)`` float32 network input."""
    unit = intensity_to_unit(volume, spec)
    if spec.resize_to is not None:
        unit = resize_slices(unit, spec.resize_to)
    return np.ascontiguousarray(unit, dtype=np.float32)


__all__ = ["check_volume", "intensity_to_unit", "preprocess_volume", "resize_slices", "volume_modality"]
