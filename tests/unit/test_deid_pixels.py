"""Burned-in text in pixel data (PS3.15 Clean Pixel Data, 113101; 001 §7.3, §11.2.1).

Real burned-in files come from the ``deid-data`` package (an ultrasound marked BurnedInAnnotation YES
and secondary captures); phantom DX images get a name and a phone number drawn into their pixels.
By default such images are quarantined; ``--clean-pixels`` blanks recipe regions and OCR-found text and
lets an image out only when OCR finds no text left.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.imaging.deid import DeidOptions, deidentify_path
from aimd.imaging.deid.pixels import (
    PixelCleanResult,
    _apply_recipes,
    _ocr_boxes,
    burned_in_reason,
    ocr_available,
)
from aimd.phantoms import generate_dataset

deid_data = pytest.importorskip("deid_data", reason="deid-data (test extra) is not installed")
DEID_DATA = Path(deid_data.__file__).parent / "data"
needs_ocr = pytest.mark.skipif(not ocr_available(), reason="tesseract-ocr / pytesseract not installed")
runner = CliRunner()
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


@pytest.fixture(scope="module")
def phantom_dx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dx")
    generate_dataset(root / "ph", cases=1, seed=5, size=64, workers=1)
    return root / "ph" / "cases" / "case_0001" / "dx.dcm"


def _with_text(dx: Path, out: Path, text: str) -> np.ndarray:
    """The phantom DX upsampled to 408×256 with ``text`` drawn in its top band (BurnedInAnnotation YES)."""
    ds = pydicom.dcmread(dx)
    big = np.kron(ds.pixel_array, np.ones((4, 4), dtype=ds.pixel_array.dtype))
    canvas = Image.fromarray((big >> 4).astype(np.uint8) if big.max() > 255 else big.astype(np.uint8))
    font = ImageFont.truetype(str(FONT), 16) if FONT.exists() else ImageFont.load_default()
    draw = ImageDraw.Draw(canvas)
    for row, line in enumerate(text.split("\n")):
        draw.text((6, 6 + 24 * row), line, fill=255, font=font)
    drawn = np.asarray(canvas).astype(big.dtype)
    mask = drawn == 255
    big[mask] = big.max() if big.max() > 255 else 255
    ds.Rows, ds.Columns = big.shape
    ds.PixelData = big.tobytes()
    ds.BurnedInAnnotation = "YES"
    ds.save_as(out, enforce_file_format=True)
    return mask


def test_reasons_follow_header_and_modality() -> None:
    us = pydicom.dcmread(DEID_DATA / "ultrasounds" / "GREYSCALE_IMAGE.dcm", stop_before_pixels=True)
    us.PixelData = b"\0"
    cookie = pydicom.dcmread(DEID_DATA / "dicom-cookies" / "image1.dcm", stop_before_pixels=True)
    cookie.PixelData = b"\0"
    cat = pydicom.dcmread(DEID_DATA / "animals" / "cat.dcm", stop_before_pixels=True)
    cat.PixelData = b"\0"
    assert burned_in_reason(us) == "BurnedInAnnotation is YES"
    assert "secondary capture" in (burned_in_reason(cookie) or "")
    assert burned_in_reason(cat) is None  # DX marked NO, no overlays
    cat[0x60003000] = pydicom.DataElement(0x60003000, "OW", b"\0\0")
    assert "overlay" in (burned_in_reason(cat) or "")


def test_burned_in_files_are_quarantined_by_default(tmp_path: Path, phantom_dx: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(DEID_DATA / "ultrasounds" / "GREYSCALE_IMAGE.dcm", src / "us.dcm")
    shutil.copy(DEID_DATA / "dicom-cookies" / "image1.dcm", src / "sc.dcm")
    _with_text(phantom_dx, src / "dx_text.dcm", "ZHANG WEIQIANG\n13812345678")
    result = runner.invoke(
        app, ["data", "deid", str(src), str(tmp_path / "dst"), "--map", str(tmp_path / "map.json"), "--json"]
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["quarantined"] == 3
    reasons = {item["path"]: item["reason"] for item in payload["left_out"]}
    assert "BurnedInAnnotation is YES" in reasons["us.dcm"] and "needs review" in reasons["sc.dcm"]
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["deid_log.json"]
    log = json.loads((tmp_path / "dst" / "deid_log.json").read_text(encoding="utf-8"))
    assert {f["path"]: f["status"] for f in log["files"]}["dx_text.dcm"] == "quarantined"


@needs_ocr
def test_clean_pixels_masks_text_drawn_into_a_phantom_dx(tmp_path: Path, phantom_dx: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    mask = _with_text(phantom_dx, src / "dx_text.dcm", "ZHANG WEIQIANG\n13812345678")
    original = pydicom.dcmread(src / "dx_text.dcm").pixel_array
    assert _ocr_boxes(original)  # the drawn text is readable before cleaning
    report = deidentify_path(
        src, tmp_path / "dst", tmp_path / "map.json", salt="k", options=DeidOptions.from_settings(clean_pixels=True)
    )
    assert report.exit_code == 0, report.summary()["left_out"]
    out = pydicom.dcmread(tmp_path / "dst" / "dx_text.dcm")
    cleaned = out.pixel_array
    assert not _ocr_boxes(cleaned)
    assert (cleaned[mask] == cleaned.min()).mean() > 0.95  # the strokes are blanked
    rows = np.arange(cleaned.shape[0])
    lower = rows > 80
    assert (cleaned[lower] == original[lower]).mean() > 0.95  # the image below the text is kept
    assert out.BurnedInAnnotation == "NO"
    assert "113101" in [item.CodeValue for item in out.DeidentificationMethodCodeSequence]
    assert report.files[0].details["pixel_cleaning"]["ocr_regions"] >= 1


def test_deid_recipe_blanks_the_header_band_of_a_known_ultrasound_layout() -> None:
    ds = pydicom.dcmread(DEID_DATA / "ultrasounds" / "GREYSCALE_IMAGE.dcm")
    pixels = np.array(ds.pixel_array)
    result = PixelCleanResult(clean=False)
    cleaned = _apply_recipes(ds, pixels.copy(), result)
    assert result.recipe_regions >= 1 and any("Philips" in label for label in result.recipe_labels)
    assert not cleaned[:49].any() and pixels[:49].any()  # the recipe's band (0,0,1024,49) is blanked
    assert np.array_equal(cleaned[49:], pixels[49:])  # and nothing else


def test_no_recipe_matches_a_phantom_dx(phantom_dx: Path) -> None:
    ds = pydicom.dcmread(phantom_dx)
    pixels = np.array(ds.pixel_array)
    result = PixelCleanResult(clean=False)
    assert np.array_equal(_apply_recipes(ds, pixels.copy(), result), pixels) and result.recipe_regions == 0
