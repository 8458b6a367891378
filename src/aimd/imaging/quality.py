"""Image-quality checks of input images (001 §7.2 g) → ``list[Finding]``.

001 §7.2 g asks for sufficient resolution, contrast and signal-to-noise ratio, and for severe
artefacts such as motion blur to be excluded or noted. aimd measures, per volume:

* resolution — in-plane pixel spacing, slice spacing (volumes) and matrix size;
* noise σ — per slice, with a robust form of Immerkær's fast estimator: the image is convolved
  with the 3×3 kernel ``[[1,-2,1],[-2,4,-2],[1,-2,1]]`` (which cancels constant and linear
  intensity, so it keeps mostly noise; its response to white noise has standard deviation 6σ) and
  σ is 1.4826 · MAD / 6 over the slice, which edges barely move;
* contrast-to-noise — the robust intensity range (1st–99th percentile) over σ; for non-CT images
  also SNR — the mean of the foreground (above the Otsu threshold) over σ; for CT, σ in HU;
* slice artefacts — slices much blurrier (steepest edges over the slice's own intensity range)
  or much noisier than the neighbouring slices, typical of motion or a corrupted acquisition.

Codes: LOW_RESOLUTION, THICK_SLICES, SMALL_MATRIX, IMAGE_CONSTANT (error), HIGH_NOISE, LOW_SNR,
LOW_CONTRAST, SLICE_BLURRED, SLICE_NOISY. Thresholds come from ``get_settings().quality``; all
findings but IMAGE_CONSTANT are warnings (the clause says *exclude or note*).

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> rng = np.random.default_rng(0)
>>> flat = Volume(rng.normal(100, 5, (4, 128, 128)).astype(np.float32), spacing=(1.0, 1.0, 2.0))
>>> round(measure_quality(flat)["noise_sigma"], 1)
5.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from aimd.core.config import get_settings
from aimd.core.findings import Finding, Severity
from aimd.imaging.volume import Volume

G = "001 §7.2 g"
_PROJECTION = {"CR", "DX", "MG", "IO", "PX", "RF", "XA"}
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)


def slice_noise(image: NDArray[Any]) -> float:
    """Robust noise σ of one 2-D image (Immerkær's kernel, MAD of the response / 6).

    Example
    -------
    >>> rng = np.random.default_rng(1)
    >>> round(slice_noise(rng.normal(0, 3, (256, 256))), 1)
    3.0
    """
    img = np.asarray(image, np.float64)
    if min(img.shape) < 3:
        return 0.0
    response = ndimage.convolve(img, _KERNEL, mode="reflect")[1:-1, 1:-1]
    mad = float(np.median(np.abs(response - np.median(response))))
    return 1.4826 * mad / 6.0


def _sharpness(image: NDArray[Any]) -> float:
    """Steepest edges (99.5th percentile of the gradient magnitude) over the slice's intensity range.

    Blur flattens every edge, so this falls; a slice that only shows less anatomy keeps its edges
    as steep, so it does not (a mean gradient would).
    """
    img = np.asarray(image, np.float64)
    low, high = np.percentile(img, [0.5, 99.5])
    if high <= low:
        return 0.0
    grad = np.hypot(ndimage.sobel(img, axis=0), ndimage.sobel(img, axis=1))
    return float(np.percentile(grad, 99.5) / (high - low))


def _otsu(values: NDArray[np.float64]) -> float:
    hist, edges = np.histogram(values, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres) / np.maximum(w0, 1)
    m1 = ((hist * centres).sum() - np.cumsum(hist * centres)) / np.maximum(w1, 1)
    between = w0 * w1 * (m0 - m1) ** 2
    return float(centres[int(np.argmax(between))])


def measure_quality(volume: Volume) -> dict[str, Any]:
    """The quality measurements of ``volume`` (no judgement): spacing, matrix, σ, SNR, contrast, per slice.

    Example
    -------
    >>> vol = Volume(np.zeros((2, 8, 8), np.int16))
    >>> measure_quality(vol)["constant"]
    True
    """
    arr = np.asarray(volume.array, np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    noise = np.array([slice_noise(s) for s in arr])
    sharp = np.array([_sharpness(s) for s in arr])
    sigma = float(np.median(noise))
    low, high = (float(v) for v in np.percentile(arr, [1, 99]))
    constant = bool(arr.max() == arr.min())
    fg_mean = None
    if not constant:
        fg = arr[arr > _otsu(arr.ravel())]
        fg_mean = float(fg.mean()) if fg.size else None
    return {
        "spacing": [float(s) for s in volume.spacing],
        "matrix": [int(arr.shape[1]), int(arr.shape[2])],
        "slices": int(arr.shape[0]),
        "noise_sigma": sigma,
        "range_p1_p99": [low, high],
        "constant": constant,
        "snr": None if (fg_mean is None or sigma == 0) else fg_mean / sigma,
        "contrast_to_noise": None if sigma == 0 else (high - low) / sigma,
        "slice_noise": noise.tolist(),
        "slice_sharpness": sharp.tolist(),
    }


def _finding(code: str, message: str, hint: str, severity: Severity = Severity.WARNING, **loc: Any) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        clause=G,
        message=message,
        hint=hint,
        location={k: v for k, v in loc.items() if v is not None},
    )


def check_quality(volume: Volume) -> list[Finding]:
    """Judge :func:`measure_quality` against ``get_settings().quality`` (001 §7.2 g).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> coarse = Volume(rng.normal(100, 1, (3, 64, 64)).astype(np.float32), spacing=(3.0, 3.0, 8.0))
    >>> sorted({f.code for f in check_quality(coarse)})
    ['LOW_CONTRAST', 'LOW_RESOLUTION', 'SMALL_MATRIX', 'THICK_SLICES']
    """
    q = get_settings().quality
    m = measure_quality(volume)
    uid = volume.metadata.get("series_uid")
    loc: dict[str, Any] = {"series_uid": uid} if uid else {}
    if m["constant"]:
        return [
            _finding(
                "IMAGE_CONSTANT",
                f"every voxel has the value {float(volume.array.flat[0]):g}",
                "the pixel data are empty or were not decoded; re-export the image",
                Severity.ERROR,
                **loc,
            )
        ]
    modality = str(volume.modality or volume.metadata.get("modality") or "").upper()
    out: list[Finding] = []
    sx, sy, sz = m["spacing"]
    if max(sx, sy) > q.max_pixel_spacing_mm:
        out.append(
            _finding(
                "LOW_RESOLUTION",
                f"pixel spacing {sx:g} × {sy:g} mm exceeds {q.max_pixel_spacing_mm:g} mm",
                "use a finer reconstruction, or note it for the annotators",
                **loc,
            )
        )
    if m["slices"] > 1 and modality not in _PROJECTION and sz > q.max_slice_spacing_mm:
        out.append(
            _finding(
                "THICK_SLICES",
                f"slice spacing {sz:g} mm exceeds {q.max_slice_spacing_mm:g} mm",
                "use a thinner reconstruction, or note it for the annotators",
                **loc,
            )
        )
    if min(m["matrix"]) < q.min_matrix:
        out.append(
            _finding(
                "SMALL_MATRIX",
                f"matrix {m['matrix'][0]} × {m['matrix'][1]} is below {q.min_matrix}",
                "use the original resolution, not a thumbnail",
                **loc,
            )
        )
    sigma = m["noise_sigma"]
    if modality == "CT" and sigma > q.ct_max_noise_hu:
        out.append(
            _finding(
                "HIGH_NOISE",
                f"noise σ {sigma:.1f} HU exceeds {q.ct_max_noise_hu:g} HU",
                "check dose and reconstruction kernel; note it or exclude the series",
                **loc,
            )
        )
    if modality != "CT" and m["snr"] is not None and m["snr"] < q.min_snr:
        out.append(
            _finding("LOW_SNR", f"SNR {m['snr']:.1f} is below {q.min_snr:g}", "note it or exclude the series", **loc)
        )
    if m["contrast_to_noise"] is not None and m["contrast_to_noise"] < q.min_contrast_to_noise:
        out.append(
            _finding(
                "LOW_CONTRAST",
                f"intensity range / noise {m['contrast_to_noise']:.1f} is below {q.min_contrast_to_noise:g}",
                "check windowing and acquisition; note it",
                **loc,
            )
        )
    out.extend(_slice_outliers(volume, m, loc))
    return out


def _neighbours(values: NDArray[np.float64], k: int, reach: int = 2) -> float:
    """Median of the slices within ``reach`` of ``k`` (``k`` itself left out)."""
    around = np.r_[values[max(0, k - reach) : k], values[k + 1 : k + 1 + reach]]
    return float(np.median(around))


def _slice_outliers(volume: Volume, m: dict[str, Any], loc: dict[str, Any]) -> list[Finding]:
    """Slices far blurrier or noisier than their neighbours: anatomy changes slowly from slice to
    slice, a motion-corrupted or damaged slice does not."""
    q = get_settings().quality
    sharp, noise = np.asarray(m["slice_sharpness"]), np.asarray(m["slice_noise"])
    if len(sharp) < 3:
        return []
    files = volume.metadata.get("slices") or []
    out = []
    for k in range(len(sharp)):
        file = files[k].get("file") if k < len(files) and isinstance(files[k], dict) else None
        ref_sharp, ref_noise = _neighbours(sharp, k), _neighbours(noise, k)
        if ref_sharp > 0 and 0 < sharp[k] < q.blur_ratio * ref_sharp:
            out.append(
                _finding(
                    "SLICE_BLURRED",
                    f"slice {k} is {sharp[k] / ref_sharp:.0%} as sharp as its neighbours (motion or blur)",
                    "exclude the slice or series, or note it",
                    slice=k,
                    file=file,
                    **loc,
                )
            )
        if ref_noise > 0 and noise[k] > q.noise_ratio * ref_noise:
            out.append(
                _finding(
                    "SLICE_NOISY",
                    f"slice {k} is {noise[k] / ref_noise:.1f}× as noisy as its "
                    "neighbours (artefact or corrupted acquisition)",
                    "exclude the slice or series, or note it",
                    slice=k,
                    file=file,
                    **loc,
                )
            )
    return out


__all__ = ["check_quality", "measure_quality", "slice_noise"]
