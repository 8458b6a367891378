"""Window/level and per-modality intensity normalisation to [0, 1] (003 §2.2.1, §2.2.2).

Presets (centre / width, HU):

=============  ======  =====  =====================================================
preset         centre  width  source
=============  ======  =====  =====================================================
lung             -600   1500  common chest CT lung window
mediastinum        40    400  003 §2.2.1 (the CT window of its preprocessing table)
brain              40     80  003 §2.2.2 "脑窗"
bone              400   2000  003 §2.2.2 "骨窗"
abdomen            50    400  common abdominal soft-tissue window (W400/L50)
=============  ======  =====  =====================================================

``normalize`` follows 003 §2.2.1: CT → a fixed window (mediastinum unless a preset is given),
MR → min–max (optionally between robust percentiles), X-ray (CR/DX/MG/RF/XA/PX) → divided by the
largest stored value of its bit depth, MONOCHROME1 inverted so that bright always means dense.

Example
-------
>>> import numpy as np
>>> apply_window(np.array([-1000.0, 40.0, 1000.0]), 40, 400).tolist()
[0.0, 0.5, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume


@dataclass(frozen=True)
class Window:
    """A display window: centre (level) and width, in the image's units (HU for CT)."""

    center: float
    width: float

    @property
    def lower(self) -> float:
        return self.center - self.width / 2

    @property
    def upper(self) -> float:
        return self.center + self.width / 2


WINDOW_PRESETS: dict[str, Window] = {
    "lung": Window(-600.0, 1500.0),
    "mediastinum": Window(40.0, 400.0),
    "brain": Window(40.0, 80.0),
    "bone": Window(400.0, 2000.0),
    "abdomen": Window(50.0, 400.0),
}
XRAY_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "PX", "IO"})
DEFAULT_CT_PRESET = "mediastinum"


def get_window(preset: str | Window | tuple[float, float]) -> Window:
    """Resolve a preset name, a :class:`Window` or a ``(center, width)`` pair.

    Example
    -------
    >>> get_window("lung")
    Window(center=-600.0, width=1500.0)
    """
    if isinstance(preset, Window):
        return preset
    if isinstance(preset, str):
        key = preset.lower()
        if key not in WINDOW_PRESETS:
            raise InvalidInputError(
                f"unknown window preset {preset!r}",
                where="preset",
                hint=f"use one of {sorted(WINDOW_PRESETS)} or (center, width)",
            )
        return WINDOW_PRESETS[key]
    center, width = preset
    return Window(float(center), float(width))


def apply_window(array: ArrayLike, center: float, width: float) -> NDArray[np.float32]:
    """Clip ``array`` to ``[center - width/2, center + width/2]`` and scale linearly to [0, 1].

    Example
    -------
    >>> apply_window([0, 50, 100], 50, 100).tolist()
    [0.0, 0.5, 1.0]
    """
    if not np.isfinite(width) or width <= 0:
        raise InvalidInputError(
            f"window width must be > 0, got {width}", where="width", hint="pass a positive window width"
        )
    lower = float(center) - float(width) / 2
    out = (np.asarray(array, dtype=np.float32) - np.float32(lower)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)


def minmax(array: ArrayLike, percentiles: tuple[float, float] | None = None) -> NDArray[np.float32]:
    """Scale to [0, 1] between the min and max, or between two percentiles (values outside clipped).

    A constant image maps to zeros.

    Example
    -------
    >>> minmax([2, 4, 6]).tolist()
    [0.0, 0.5, 1.0]
    """
    a = np.asarray(array, dtype=np.float32)
    if percentiles is None:
        lo, hi = float(a.min()), float(a.max())
    else:
        p_lo, p_hi = percentiles
        if not 0 <= p_lo < p_hi <= 100:
            raise InvalidInputError(
                f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}",
                where="percentiles",
                hint="e.g. (0.5, 99.5)",
            )
        lo, hi = (float(v) for v in np.percentile(a, [p_lo, p_hi]))
    if hi <= lo:
        return np.zeros_like(a)
    out = (a - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def _bit_depth(volume: Volume) -> int:
    bits = volume.metadata.get("bits_stored")
    if isinstance(bits, int) and bits > 0:
        return bits
    if volume.array.dtype.kind in "iu":
        return volume.array.dtype.itemsize * 8
    raise InvalidInputError(
        "cannot tell the bit depth of a floating-point X-ray image",
        where="metadata.bits_stored",
        hint="set metadata['bits_stored'] or pass a preset",
    )


def normalize(
    volume: Volume,
    preset: str | Window | tuple[float, float] | None = None,
    *,
    percentiles: tuple[float, float] | None = None,
) -> Volume:
    """Map a volume's values to float32 [0, 1] by modality (003 §2.2.1).

    Parameters
    ----------
    volume:
        Input volume; its ``modality`` chooses the method.
    preset:
        Window preset name, :class:`Window` or ``(center, width)``; when given it is applied to
        any modality. CT without a preset uses the mediastinum window (40/400).
    percentiles:
        For min–max scaling (MR and unknown modalities): ``(low, high)`` percentiles instead of
        the extreme values, e.g. ``(0.5, 99.5)``.

    The method and its parameters are recorded in ``metadata["normalization"]``.

    Example
    -------
    >>> import numpy as np
    >>> ct = Volume(np.array([[[-1000, 40, 2000]]], np.int16), modality="CT")
    >>> [round(float(v), 3) for v in normalize(ct, "lung").array.ravel()]
    [0.233, 0.927, 1.0]
    """
    modality = (volume.modality or volume.metadata.get("modality") or "").upper()
    record: dict[str, Any]
    if preset is not None or modality == "CT":
        window = get_window(preset if preset is not None else DEFAULT_CT_PRESET)
        out = apply_window(volume.array, window.center, window.width)
        record = {"method": "window", "center": window.center, "width": window.width}
    elif modality in XRAY_MODALITIES:
        bits = _bit_depth(volume)
        top = float(2**bits - 1)
        out = np.clip(volume.array.astype(np.float32) / np.float32(top), 0.0, 1.0)
        inverted = str(volume.metadata.get("photometric", "")).upper() == "MONOCHROME1"
        if inverted:
            out = 1.0 - out
        record = {"method": "bit_depth", "bits": bits, "inverted_monochrome1": inverted}
    else:
        out = minmax(volume.array, percentiles)
        record = {"method": "minmax", "percentiles": list(percentiles) if percentiles else None}
    result = volume.with_array(out.astype(np.float32, copy=False))
    result.metadata["normalization"] = {"modality": modality or None, **record}
    return result


__all__ = [
    "DEFAULT_CT_PRESET",
    "WINDOW_PRESETS",
    "XRAY_MODALITIES",
    "Window",
    "apply_window",
    "get_window",
    "minmax",
    "normalize",
]
