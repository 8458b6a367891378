"""Read DICOM headers (no pixels) into per-frame records, for series assembly and checks (001 §7.2 a).

Each file is parsed once with ``stop_before_pixels``; for uncompressed little-endian files the byte
offset of the pixel values is recorded, so pixels can later be read with NumPy directly. Classic
single-frame files, enhanced multi-frame files (Shared/PerFrameFunctionalGroupsSequence) and legacy
multi-frame files (GridFrameOffsetVector, SpacingBetweenSlices) all become one
:class:`FrameHeader` per 2-D frame.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> frames = read_frame_headers(get_testdata_file("eCT_Supplemental.dcm"))
>>> [f.position for f in frames]
[(99.5, -301.5, -159.0), (99.5, -301.5, -149.0)]
"""

from __future__ import annotations

import os
import re
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from aimd.core.errors import InvalidInputError

#: Files with these suffixes (or names) in a series folder are not DICOM and are skipped.
NON_DICOM_SUFFIXES = frozenset(
    {
        ".txt",
        ".md",
        ".json",
        ".xml",
        ".csv",
        ".tsv",
        ".html",
        ".htm",
        ".pdf",
        ".jpg",
        ".jpeg",
        ".png",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".nii",
        ".gz",
        ".zip",
        ".log",
        ".ini",
        ".yaml",
        ".yml",
        ".toml",
        ".py",
        ".sh",
        ".bat",
        ".exe",
        ".mha",
        ".mhd",
        ".nrrd",
        ".raw",
        ".db",
        ".sqlite",
    }
)
_NON_DICOM_NAMES = frozenset({"dicomdir", "readme", "license", "thumbs.db", ".ds_store"})
_DICOMDIR_SOP = "1.2.840.10008.1.3.10"
_PIXEL_TAG = (0x7FE0, 0x0010)
_PIXEL_CLASSES = frozenset({"RT Dose Storage", "Segmentation Storage", "Parametric Map Storage"})
PROJECTION_MODALITIES = frozenset({"CR", "DX", "MG", "RF", "XA", "IO", "PX", "RG", "OT", "SC", "US", "XC"})


class NotAnImageError(InvalidInputError):
    """A readable DICOM file that holds no greyscale image (DICOMDIR, SR, RT plan, colour image)."""


@dataclass(frozen=True)
class PixelLocation:
    """Where a file's pixels are and how they are stored."""

    transfer_syntax: str
    rows: int
    columns: int
    n_frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    samples_per_pixel: int
    photometric: str
    offset: int | None = None  # byte offset of native little-endian pixel values (None: decode with pydicom)
    length: int | None = None


@dataclass(frozen=True)
class FrameHeader:
    """Header fields of one 2-D frame (a single-frame file, or one frame of a multi-frame file)."""

    path: Path
    frame: int | None
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    description: str
    sop_class: str
    instance_number: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None  # DICOM order: (row spacing, column spacing)
    spacing_tag: str | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    slope: float
    intercept: float
    rescale_tags: bool  # RescaleSlope/Intercept present (top level or functional groups)
    rescale_type: str | None
    pixel_padding: float | None
    pixels: PixelLocation


@dataclass
class DicomScan:
    """Result of reading every header below a path."""

    frames: list[FrameHeader] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # DICOM, but not a greyscale image
    ignored: list[Path] = field(default_factory=list)  # non-DICOM suffix (.txt, .json, ...)

    def series(self) -> dict[str, list[FrameHeader]]:
        """Frames grouped by SeriesInstanceUID, in order of first appearance."""
        groups: dict[str, list[FrameHeader]] = defaultdict(list)
        for fr in self.frames:
            groups[fr.series_uid].append(fr)
        return dict(groups)


@dataclass(frozen=True)
class SeriesInfo:
    """One series found in a folder (what ``list_series`` returns)."""

    uid: str
    modality: str
    description: str
    n_files: int
    shape: tuple[int, int, int]  # (z, y, x)
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "modality": self.modality,
            "description": self.description,
            "n_files": self.n_files,
            "shape": list(self.shape),
        }


# ----------------------------------------------------------------------------- header reading
def natural_key(path: Path) -> list[Any]:
    """Sort key that orders ``IM2`` before ``IM10`` (digit runs compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


class _Tags:
    """Top-level header values decoded straight from the raw bytes (pydicom's value conversion is slow)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self.little = ds.original_encoding[1] is not False

    def _elem(self, keyword: str) -> Any:
        tag = tag_for_keyword(keyword)
        return None if tag is None else self.ds.get_item(tag)

    def text(self, keyword: str) -> str:
        elem = self._elem(keyword)
        if elem is None or elem.value is None:
            return ""
        if isinstance(elem, RawDataElement):
            return bytes(elem.value).decode("latin-1").strip("\x00 ")
        value = elem.value
        return "\\".join(str(v) for v in value) if isinstance(value, list | MultiValue) else str(value)

    def numbers(self, keyword: str, n: int) -> tuple[float, ...] | None:
        text = self.text(keyword)
        return _floats(text.split("\\"), n) if text else None

    def number(self, keyword: str) -> float | None:
        vals = self.numbers(keyword, 1)
        return vals[0] if vals else None

    def binary_int(self, keyword: str, signed: bool = False) -> int | None:
        """A US/SS value (Rows, BitsAllocated, PixelPaddingValue ...)."""
        elem = self._elem(keyword)
        if elem is None or elem.value is None:
            return None
        if isinstance(elem, RawDataElement):
            raw = bytes(elem.value)
            if len(raw) < 2:
                return None
            return int(struct.unpack(("<" if self.little else ">") + ("h" if signed else "H"), raw[:2])[0])
        value = elem.value[0] if isinstance(elem.value, list | MultiValue) else elem.value
        return _int(value)


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    if value is None or value == "":
        return None
    items = [value] if isinstance(value, str | bytes) or not hasattr(value, "__iter__") else list(value)
    try:
        vals = tuple(float(v) for v in items)
    except (TypeError, ValueError):
        return None
    if len(vals) != n or not all(np.isfinite(vals)):
        return None
    return vals


def _float(value: Any) -> float | None:
    vals = _floats(value, 1)
    return vals[0] if vals else None


def _point(values: Iterable[float]) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _pixel_location(ds: Dataset, tags: _Tags, fp: Any) -> PixelLocation:
    """Describe the pixel data; locate native little-endian pixel bytes directly after the header."""
    ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "") if hasattr(ds, "file_meta") else ""
    n_frames = _int(tags.text("NumberOfFrames")) or 1
    bits_alloc = tags.binary_int("BitsAllocated") or 16
    loc = dict(
        transfer_syntax=ts,
        rows=tags.binary_int("Rows") or 0,
        columns=tags.binary_int("Columns") or 0,
        n_frames=n_frames,
        bits_allocated=bits_alloc,
        bits_stored=tags.binary_int("BitsStored") or bits_alloc,
        signed=tags.binary_int("PixelRepresentation") == 1,
        samples_per_pixel=tags.binary_int("SamplesPerPixel") or 1,
        photometric=tags.text("PhotometricInterpretation") or "MONOCHROME2",
    )
    implicit, little = ds.original_encoding
    if ts in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        native, implicit = True, ts == ImplicitVRLittleEndian
    else:
        native = not ts and bool(little) and implicit is not None
    if native and bits_alloc in (8, 16, 32) and loc["samples_per_pixel"] == 1:
        head = fp.read(12)
        explicit = not implicit and head[4:6] in (b"OB", b"OW", b"UN")
        if len(head) == 12 and struct.unpack("<HH", head[:4]) == _PIXEL_TAG and (explicit or implicit):
            length = struct.unpack("<I", head[8:12] if explicit else head[4:8])[0]
            if length != 0xFFFFFFFF:
                offset = fp.tell() - 12 + (12 if explicit else 8)
                return PixelLocation(**loc, offset=offset, length=length)
    return PixelLocation(**loc)


def _functional(ds: Dataset, item: Dataset | None, shared: Dataset | None, seq: str, attr: str) -> Any:
    for group in (item, shared):
        if group is not None and seq in group and len(group[seq].value):
            inner = group[seq].value[0]
            if attr in inner:
                return inner[attr].value
    return None


def _frames_of(ds: Dataset, tags: _Tags, path: Path, pixels: PixelLocation) -> list[FrameHeader]:
    """One FrameHeader per 2-D frame of ``ds`` (classic, enhanced multi-frame or legacy multi-frame)."""
    description = tags.text("SeriesDescription")
    if not description.isascii():  # decode with the file's SpecificCharacterSet
        description = str(ds.get("SeriesDescription", "") or "")
    padding = tags.binary_int("PixelPaddingValue", signed=pixels.signed)
    common = dict(
        path=path,
        series_uid=tags.text("SeriesInstanceUID"),
        study_uid=tags.text("StudyInstanceUID"),
        frame_of_reference_uid=tags.text("FrameOfReferenceUID"),
        modality=tags.text("Modality"),
        description=description,
        sop_class=tags.text("SOPClassUID"),
        pixels=pixels,
        pixel_padding=None if padding is None else float(padding),
    )
    top_position = tags.numbers("ImagePositionPatient", 3)
    top_orientation = tags.numbers("ImageOrientationPatient", 6)
    top_spacing, tag = tags.numbers("PixelSpacing", 2), "PixelSpacing"
    imager = tags.numbers("ImagerPixelSpacing", 2)
    if (top_spacing is None or min(top_spacing) <= 0) and imager is not None and min(imager) > 0:
        top_spacing, tag = imager, "ImagerPixelSpacing"
    top_slope = tags.number("RescaleSlope")
    top_intercept = tags.number("RescaleIntercept")
    top_type = tags.text("RescaleType") or None
    thickness = tags.number("SliceThickness")
    between = tags.number("SpacingBetweenSlices")
    instance = _int(tags.text("InstanceNumber"))
    n = pixels.n_frames
    enhanced = "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds
    if enhanced:
        shared = ds.SharedFunctionalGroupsSequence[0] if ds.get("SharedFunctionalGroupsSequence") else None
        per = ds.get("PerFrameFunctionalGroupsSequence") or []
        frames = []
        for k in range(n):
            item = per[k] if k < len(per) else None

            def fg(seq: str, attr: str, item: Dataset | None = item) -> Any:
                return _functional(ds, item, shared, seq, attr)

            spacing = _floats(fg("PixelMeasuresSequence", "PixelSpacing"), 2)
            slope = _float(fg("PixelValueTransformationSequence", "RescaleSlope"))
            intercept = _float(fg("PixelValueTransformationSequence", "RescaleIntercept"))
            frames.append(
                FrameHeader(
                    **common,
                    frame=k,
                    instance_number=k + 1,
                    position=_floats(fg("PlanePositionSequence", "ImagePositionPatient"), 3)
                    or (top_position if n == 1 else None),
                    orientation=(
                        _floats(fg("PlaneOrientationSequence", "ImageOrientationPatient"), 6) or top_orientation
                    ),
                    pixel_spacing=spacing or top_spacing,
                    spacing_tag="PixelSpacing" if spacing else (tag if top_spacing else None),
                    slice_thickness=_float(fg("PixelMeasuresSequence", "SliceThickness")) or thickness,
                    spacing_between_slices=_float(fg("PixelMeasuresSequence", "SpacingBetweenSlices")) or between,
                    slope=slope if slope is not None else (top_slope if top_slope is not None else 1.0),
                    intercept=intercept if intercept is not None else (top_intercept or 0.0),
                    rescale_tags=slope is not None or top_slope is not None,
                    rescale_type=str(fg("PixelValueTransformationSequence", "RescaleType") or "") or top_type,
                )
            )
        return frames
    positions: list[tuple[float, float, float] | None] = [top_position] + [None] * (n - 1)
    if n > 1 and top_position is not None and top_orientation is not None:
        normal = np.cross(top_orientation[:3], top_orientation[3:])
        offsets = tags.numbers("GridFrameOffsetVector", n)
        steps: list[float] | None = None
        if offsets is not None:
            # relative offsets start at 0; absolute ones (axial RT dose) start at the IPP's z
            steps = [o - offsets[0] for o in offsets] if offsets[0] != 0 else list(offsets)
        elif between:
            steps = [k * between for k in range(n)]
        if steps is not None:
            positions = [_point(np.asarray(top_position) + s * normal) for s in steps]
    return [
        FrameHeader(
            **common,
            frame=k if n > 1 else None,
            instance_number=instance if n == 1 else k + 1,
            position=positions[k],
            orientation=top_orientation,
            pixel_spacing=top_spacing,
            spacing_tag=tag if top_spacing else None,
            slice_thickness=thickness,
            spacing_between_slices=between,
            slope=top_slope if top_slope is not None else 1.0,
            intercept=top_intercept or 0.0,
            rescale_tags=top_slope is not None,
            rescale_type=top_type,
        )
        for k in range(n)
    ]


def _image_class(sop_class: str) -> bool:
    """True for SOP classes that carry pixel data (image storage, RT dose, segmentation, parametric map)."""
    name = UID(sop_class).name
    return name == sop_class or "Image" in name or name in _PIXEL_CLASSES


def _require_image(ds: Dataset, tags: _Tags, path: Path) -> None:
    """Raise NotAnImageError for readable non-image objects, InvalidDicomError for broken image headers."""
    sop = tags.text("SOPClassUID") or str(getattr(ds.get("file_meta"), "MediaStorageSOPClassUID", "") or "")
    hint = "pass image files only (not DICOMDIR, SR, RT plan or presentation states)"
    if sop == _DICOMDIR_SOP or "DirectoryRecordSequence" in ds:
        raise NotAnImageError("is a DICOMDIR (a media index), not an image", where=str(path), hint=hint)
    if "Rows" not in ds or "Columns" not in ds:
        if sop and not _image_class(sop):
            raise NotAnImageError(f"DICOM {UID(sop).name} object holds no image", where=str(path), hint=hint)
        raise InvalidDicomError("image header incomplete (Rows/Columns missing): truncated or damaged file")


def _require_greyscale(pixels: PixelLocation, path: Path) -> None:
    if pixels.samples_per_pixel != 1 or pixels.photometric.upper() not in ("MONOCHROME1", "MONOCHROME2"):
        raise NotAnImageError(
            f"colour image ({pixels.samples_per_pixel} samples per pixel, {pixels.photometric}) is not a "
            "greyscale volume",
            where=str(path),
            hint="convert it to greyscale before reading it as a volume",
        )


def _is_ignorable(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.suffix.lower() in NON_DICOM_SUFFIXES or name in _NON_DICOM_NAMES or name.startswith(("readme", "license"))
    )


def read_frame_headers(path: str | Path) -> list[FrameHeader]:
    """Read the header of one DICOM file (no pixels) and return one :class:`FrameHeader` per frame.

    Raises :class:`InvalidInputError` naming the file when it is not a readable DICOM image.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> len(read_frame_headers(get_testdata_file("emri_small.dcm")))
    10
    """
    path = Path(path)
    try:
        with open(path, "rb") as fp:
            try:
                ds = pydicom.dcmread(fp, stop_before_pixels=True)
            except InvalidDicomError:
                fp.seek(0)
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
                if "SOPClassUID" not in ds and "Rows" not in ds:
                    raise InvalidDicomError("no DICOM preamble and no DICOM image attributes") from None
            tags = _Tags(ds)
            _require_image(ds, tags, path)
            pixels = _pixel_location(ds, tags, fp)
        _require_greyscale(pixels, path)
        return _frames_of(ds, tags, path, pixels)
    except InvalidInputError:
        raise
    except (
        OSError,
        InvalidDicomError,
        EOFError,
        ValueError,
        struct.error,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
    ) as err:
        raise InvalidInputError(
            f"not a readable DICOM file ({type(err).__name__}: {err})",
            where=str(path),
            hint="re-export it from the PACS or remove it from the folder",
        ) from None


def _candidate_files(root: Path) -> tuple[list[Path], list[Path]]:
    files, ignored = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.startswith("."):
                continue
            (ignored if _is_ignorable(p) else files).append(p)
    return sorted(files, key=natural_key), ignored


def workers(n_items: int) -> int:
    """Thread-pool size for ``n_items`` file reads (I/O bound: up to 2 per core, at most 8)."""
    return max(1, min(8, (os.cpu_count() or 1) * 2, n_items))


def scan_dicom(path: str | Path, *, on_file: Callable[[], None] | None = None) -> DicomScan:
    """Read every header under ``path`` (a folder, searched recursively, or one file).

    Unreadable files are collected in ``unreadable`` (with the reason) instead of raising, so
    checks can name them all; files with a non-DICOM suffix (``.txt``, ``.json``, ...) are ignored.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> scan = scan_dicom(get_testdata_file("MR_small.dcm"))
    >>> len(scan.frames), scan.unreadable
    (1, [])
    """
    root = Path(path)
    if not root.exists():
        raise InvalidInputError("path does not exist", where=str(root), hint="check the spelling of the path")
    files, ignored = ([root], []) if root.is_file() else _candidate_files(root)
    scan = DicomScan(ignored=ignored)

    def one(p: Path) -> tuple[Path, list[FrameHeader] | tuple[bool, str]]:
        try:
            result: list[FrameHeader] | tuple[bool, str] = read_frame_headers(p)
        except NotAnImageError as err:
            result = (True, err.message)
        except InvalidInputError as err:
            result = (False, err.message)
        if on_file is not None:
            on_file()
        return p, result

    with ThreadPoolExecutor(workers(len(files))) as pool:
        for p, result in pool.map(one, files):
            if isinstance(result, tuple):
                (scan.skipped if result[0] else scan.unreadable).append((p, result[1]))
            else:
                scan.frames.extend(result)
    return scan


__all__ = [
    "NON_DICOM_SUFFIXES",
    "PROJECTION_MODALITIES",
    "DicomScan",
    "FrameHeader",
    "NotAnImageError",
    "PixelLocation",
    "SeriesInfo",
    "natural_key",
    "read_frame_headers",
    "scan_dicom",
    "workers",
]
