"""Burned-in text in pixel data: which images may hold it, and the opt-in Clean Pixel Data step.

PS3.15 E.3.1 (Clean Pixel Data Option, 113101): identifying text drawn into the pixels is not touched by
any header rule. aimd never writes such an image unchanged:

* :func:`burned_in_reason` says why an image may carry burned-in text — ``BurnedInAnnotation`` = YES,
  a modality or SOP class where text in the image is common (US, SC, OT, XA, ES, XC, GM, SM, secondary
  captures) unless ``BurnedInAnnotation`` = NO, or a DX/CR/MG image with overlay planes. Such files are
  quarantined by default (left out of the output, listed with the reason).
* :func:`clean_pixels` (``aimd data deid --clean-pixels``) first blanks the regions named by the
  pixel-cleaning filter recipes of the ``deid`` package (pydicom/deid) where a recipe matches the header,
  then runs Tesseract OCR (English + simplified Chinese) over every frame and masks every word it finds,
  then runs OCR again: an image in which OCR still finds text stays in quarantine.

Example
-------
>>> from pydicom.dataset import Dataset
>>> ds = Dataset(); ds.Modality = "US"; ds.PixelData = b"\\0"
>>> burned_in_reason(ds)
'modality US often carries burned-in text'
>>> ds.BurnedInAnnotation = "NO"; burned_in_reason(ds) is None
True
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from aimd.core.errors import InvalidInputError

TEXT_MODALITIES = frozenset({"US", "SC", "OT", "XA", "ES", "XC", "GM", "SM", "IVUS", "OP", "DOC"})
OVERLAY_MODALITIES = frozenset({"DX", "CR", "MG", "RF", "PX", "IO"})
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
OCR_LANGUAGES = "eng+chi_sim"
_MIN_CONFIDENCE = 30.0
_MAX_ROUNDS = 3
_LOSSLESS = frozenset(
    {
        DeflatedExplicitVRLittleEndian,
        JPEG2000Lossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        RLELossless,
        "1.2.840.10008.1.2.4.57",
    }
)


def burned_in_reason(ds: Dataset) -> str | None:
    """Why ``ds`` may hold burned-in text (``None`` when nothing suggests it or it has no pixels).

    Example
    -------
    >>> ds = Dataset(); ds.Modality = "CT"; ds.BurnedInAnnotation = "YES"; ds.PixelData = b"\\0"
    >>> burned_in_reason(ds)
    'BurnedInAnnotation is YES'
    """
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        return None
    burned = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if burned == "YES":
        return "BurnedInAnnotation is YES"
    modality = str(ds.get("Modality", "") or "").strip().upper()
    has_overlay = any(0x6000 <= elem.tag.group < 0x6100 and elem.tag.element == 0x3000 for elem in ds)
    if modality in OVERLAY_MODALITIES and has_overlay:
        return f"modality {modality} with overlay planes (text often drawn into them)"
    if burned == "NO":
        return None
    if modality in TEXT_MODALITIES:
        return f"modality {modality} often carries burned-in text"
    if str(ds.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE_PREFIX):
        return "secondary capture: a screen grab that often carries burned-in text"
    return None


@dataclass
class PixelCleanResult:
    """What :func:`clean_pixels` did; ``clean`` is False when OCR still finds text afterwards."""

    clean: bool
    recipe_labels: list[str] = field(default_factory=list)
    recipe_regions: int = 0
    ocr_regions: int = 0
    words_left: int = 0
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe_labels": self.recipe_labels,
            "recipe_regions": self.recipe_regions,
            "ocr_regions": self.ocr_regions,
            "words_left_after_cleaning": self.words_left,
        }


def ocr_available() -> bool:
    """True when the Tesseract binary and pytesseract are installed."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


@lru_cache(maxsize=1)
def _recipe_template() -> Any:
    from deid.config import DeidRecipe

    return DeidRecipe()  # the package's default "dicom" recipe: CTP filters for known screen layouts


def clean_pixels(ds: Dataset, *, where: str = "DICOM") -> PixelCleanResult:
    """Blank burned-in text in ``ds`` (in place): deid filter recipes, then OCR masks, then an OCR check.

    The pixel data is written back uncompressed (Explicit VR Little Endian; YBR colour as RGB). Returns
    ``clean=False`` (and leaves the decision to quarantine to the caller) when text is still found.

    Raises
    ------
    InvalidInputError
        The pixel data cannot be decoded, or Tesseract is not installed.
    """
    if not ocr_available():
        raise InvalidInputError(
            "Tesseract OCR is not installed",
            where=where,
            hint="apt-get install tesseract-ocr tesseract-ocr-chi-sim, pip install pytesseract",
        )
    try:
        pixels = np.array(ds.pixel_array)
    except Exception as err:
        raise InvalidInputError(
            f"pixel data cannot be decoded ({type(err).__name__})",
            where=where,
            hint="install the decoder for this transfer syntax or re-export the image",
        ) from None
    result = PixelCleanResult(clean=False)
    pixels = _apply_recipes(ds, pixels, result)
    background = _background(pixels)
    for _ in range(_MAX_ROUNDS):  # masking one word can make a neighbour readable: repeat until none
        frames, frame_axis = _frames(ds, pixels)
        found = 0
        for index, frame in enumerate(frames):
            boxes = _ocr_boxes(frame)
            found += len(boxes)
            for x0, y0, x1, y1 in boxes:
                if frame_axis:
                    pixels[index, y0:y1, x0:x1] = background
                else:
                    pixels[y0:y1, x0:x1] = background
        result.ocr_regions += found
        if not found:  # this round was the check: no text left
            break
    else:
        frames, _ = _frames(ds, pixels)
        result.words_left = sum(len(_ocr_boxes(frame)) for frame in frames)
    _store(ds, pixels)
    result.clean = result.words_left == 0
    if not result.clean:
        result.reason = f"OCR still finds {result.words_left} word(s) of text after cleaning"
    return result


def _apply_recipes(ds: Dataset, pixels: np.ndarray, result: PixelCleanResult) -> np.ndarray:
    from deid.dicom.pixels.clean import clean_pixel_data
    from deid.dicom.pixels.detect import has_burned_pixels

    recipe = copy.deepcopy(_recipe_template())  # the package rewrites "from:" coordinates in place
    try:
        found = has_burned_pixels(ds, deid=recipe)
    except Exception:  # a recipe that cannot evaluate this header does not match it
        return pixels
    with_regions = [r for r in found.get("results", []) if r.get("coordinates")]
    if not with_regions:
        return pixels
    result.recipe_labels = sorted({str(r.get("reason", "")).strip()[:80] for r in with_regions})
    result.recipe_regions = sum(len(r["coordinates"]) for r in with_regions)
    shadow = copy.deepcopy(ds)
    shadow.PixelData = pixels.tobytes()
    _set_uncompressed(shadow, pixels)
    cleaned = clean_pixel_data(shadow, {"results": with_regions})
    if cleaned is None or cleaned.shape != pixels.shape:
        return pixels
    return np.asarray(cleaned).astype(pixels.dtype)


def _frames(ds: Dataset, pixels: np.ndarray) -> tuple[list[np.ndarray], bool]:
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    multi = pixels.ndim == 4 or (pixels.ndim == 3 and samples == 1)
    return (list(pixels) if multi else [pixels]), multi


def _to_gray8(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 3:
        frame = frame.mean(axis=-1)
    frame = frame.astype(np.float64)
    low, high = float(frame.min()), float(frame.max())
    if high <= low:
        return np.zeros(frame.shape, np.uint8)
    return np.clip((frame - low) * 255.0 / (high - low), 0, 255).astype(np.uint8)


def _ocr_boxes(frame: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1; padded) of the words Tesseract reads in one frame."""
    import pytesseract
    from PIL import Image

    gray = _to_gray8(frame)
    if not gray.any():
        return []
    scale = 2 if max(gray.shape) < 600 else 1
    boxes: list[tuple[int, int, int, int]] = []
    # Burned-in annotations are usually drawn at full brightness: besides the image itself and its
    # negative, Tesseract reads the saturated pixels alone (as black text on white).
    renderings = [gray, 255 - gray]
    bright = gray >= max(250, int(gray.max()))
    if 0 < bright.mean() < 0.2:
        renderings.append(np.where(bright, 0, 255).astype(np.uint8))
    for image in renderings:
        picture = Image.fromarray(image)
        if scale > 1:
            picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.LANCZOS)
        data = pytesseract.image_to_data(
            picture, lang=OCR_LANGUAGES, config="--psm 11", output_type=pytesseract.Output.DICT
        )
        for text, conf, x, y, w, h in zip(
            data["text"], data["conf"], data["left"], data["top"], data["width"], data["height"], strict=True
        ):
            word = "".join(ch for ch in str(text) if ch.isalnum())
            if not word or float(conf) < (_MIN_CONFIDENCE if len(word) >= 2 else 60.0):
                continue
            pad = 3
            x0, y0 = max(0, x // scale - pad), max(0, y // scale - pad)
            x1 = min(gray.shape[1], (x + w) // scale + 1 + pad)
            y1 = min(gray.shape[0], (y + h) // scale + 1 + pad)
            boxes.append((x0, y0, x1, y1))
    return boxes


def _background(pixels: np.ndarray) -> Any:
    return pixels.min()


def _set_uncompressed(ds: Dataset, pixels: np.ndarray) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if str(ds.get("PhotometricInterpretation", "")).startswith("YBR"):
        ds.PhotometricInterpretation = "RGB"
    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    if int(ds.get("BitsAllocated", bits) or bits) != bits:
        ds.BitsAllocated = bits
        ds.BitsStored = bits
        ds.HighBit = bits - 1


def _store(ds: Dataset, pixels: np.ndarray) -> None:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts is not None and ts.is_compressed and ts not in _LOSSLESS:
        ds.LossyImageCompression = "01"  # the decoded pixels keep the loss of the original encoding
    _set_uncompressed(ds, pixels)
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds["PixelData"].VR = "OB" if pixels.dtype.itemsize == 1 else "OW"
    ds["PixelData"].is_undefined_length = False
    ds.BurnedInAnnotation = "NO"


__all__ = ["OCR_LANGUAGES", "PixelCleanResult", "burned_in_reason", "clean_pixels", "ocr_available"]
