"""Encoding helpers of the DICOM writers: elements, file meta, rescale, window, shared attributes, UIDs, slices."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    ExplicitVRLittleEndian,
)
from pydicom.valuerep import format_number_as_ds

from aimd import __version__
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.core.ids import deterministic_uid, random_uid
from aimd.imaging.dicom_write.meta import (
    _EXACT_SLOPES,
    _IMPLEMENTATION_NAME,
    _IMPLEMENTATION_UID,
    _SERIES_SOP,
    _TYPE2,
    _TYPE3,
    DicomMeta,
    _keyword,
    _log,
)
from aimd.imaging.volume import Volume


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters, tiny values snapped to zero."""
    return format_number_as_ds(0.0 if abs(value) < 1e-12 else float(value))


def _encode(ds: Dataset, charset: str | None) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds, parent_encoding=charset or "iso8859")
    return fp.getvalue()


def _element(tag: int, vr: bytes, value: str | bytes) -> bytes:
    """One explicit-VR little-endian element with a 2-byte length (PS3.5 §7.1.2), padded to even."""
    raw = value.encode("ascii") if isinstance(value, str) else value
    if len(raw) % 2:
        raw += b"\0" if vr == b"UI" else b" "
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr + struct.pack("<H", len(raw)) + raw


def _preamble_and_meta(sop_class: str, sop_instance: str) -> bytes:
    """128-byte preamble, ``DICM`` and the File Meta Information group (PS3.10 §7.1)."""
    body = (
        b"\x02\x00\x01\x00OB\x00\x00"
        + struct.pack("<I", 2)
        + b"\x00\x01"
        + _element(0x00020002, b"UI", sop_class)
        + _element(0x00020003, b"UI", sop_instance)
        + _element(0x00020010, b"UI", ExplicitVRLittleEndian)
        + _element(0x00020012, b"UI", _IMPLEMENTATION_UID)
        + _element(0x00020013, b"SH", _IMPLEMENTATION_NAME)
    )
    group_length = b"\x02\x00\x00\x00UL\x04\x00" + struct.pack("<I", len(body))
    return b"\0" * 128 + b"DICM" + group_length + body


def _pixel_element(pixels: NDArray[Any]) -> bytes:
    data = np.ascontiguousarray(pixels).tobytes()
    return b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", len(data)) + data


def _default_mode(directory: bool) -> int:
    """Permissions a plain ``open``/``mkdir`` would give under the current umask (temp files get 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _charset(meta: DicomMeta) -> str | None:
    texts = (v for _, v in meta if isinstance(v, str))
    return "ISO_IR 192" if any(not t.isascii() for t in texts) else None


def _quantise(values: NDArray[Any], where: str) -> tuple[NDArray[Any], float, float]:
    """Stored 16-bit pixels plus (slope, intercept) that bring ``values`` back, exactly where possible."""
    a = np.asarray(values)
    if a.dtype.kind == "b":
        a = a.astype(np.uint8)
    if a.dtype.kind not in "iuf":
        raise InvalidInputError(f"pixel data must be numeric, got dtype {a.dtype}", where=where)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InvalidInputError(
            "pixel data contain NaN or infinity", where=where, hint="replace non-finite values before writing DICOM"
        )
    lo, hi = float(a.min()), float(a.max())
    if a.dtype.kind in "iu" or np.array_equal(a, np.round(a)):
        if lo >= -32768 and hi <= 32767:
            return a.astype("<i2"), 1.0, 0.0
        if lo >= 0 and hi <= 65535:
            return a.astype("<u2"), 1.0, 0.0
        if hi - lo <= 65535 and float(_ds(lo)) == lo:
            return (a.astype(np.float64) - lo).astype("<u2"), 1.0, lo
    else:
        for slope in _EXACT_SLOPES:
            if max(abs(lo), abs(hi)) / slope > 32767:
                break
            q = np.round(a.astype(np.float64) / slope)
            if np.array_equal((q * slope).astype(a.dtype), a):
                return q.astype("<i2"), slope, 0.0
    slope = float(_ds(max(hi - lo, 1e-12) / 65535 * (1 + 1e-9)))
    intercept = float(_ds(lo))
    q = np.clip(np.round((a.astype(np.float64) - intercept) / slope), 0, 65535)
    _log.warning("dicom_write.lossy_rescale", where=where, slope=slope, max_error=slope / 2)
    return q.astype("<u2"), slope, intercept


def _window(
    meta: DicomMeta, volume_meta: Mapping[str, Any], modality: str, values: NDArray[Any], slope: float, intercept: float
) -> tuple[float, float]:
    center = meta.window_center if meta.window_center is not None else volume_meta.get("window_center")
    width = meta.window_width if meta.window_width is not None else volume_meta.get("window_width")
    if center is not None and width is not None and float(width) > 0:
        return float(center), float(width)
    if modality == "CT":
        return 40.0, 400.0
    sample = values[tuple(slice(None, None, max(1, n // 64)) for n in values.shape)]
    lo, hi = np.percentile(sample.astype(np.float64) * slope + intercept, [0.5, 99.5])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def _common(
    ds: Dataset, meta: DicomMeta, modality: str, sop_class: str, charset: str | None, study_uid: str, series_uid: str
) -> None:
    """Patient, General Study, Patient Study, General Series, General Equipment, SOP Common."""
    if charset:
        ds.SpecificCharacterSet = charset
    ds.ImageType = {"CT": ["ORIGINAL", "PRIMARY", "AXIAL"], "MR": ["ORIGINAL", "PRIMARY", "OTHER"]}.get(
        modality, ["ORIGINAL", "PRIMARY"]
    )
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    for name in _TYPE2:
        setattr(ds, _keyword(name), getattr(meta, name))
    for name in _TYPE3:
        if getattr(meta, name):
            setattr(ds, _keyword(name), getattr(meta, name))
    ds.SeriesDate = ds.ContentDate = meta.study_date
    ds.SeriesTime = ds.ContentTime = meta.study_time
    ds.SoftwareVersions = f"aimd {__version__}"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = meta.series_number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16


def _uids(meta: DicomMeta, content_key: str) -> tuple[str, str, str, str]:
    """(seed, study, series, frame of reference) UIDs: given, seeded, content-derived or random."""
    seed = meta.uid_seed if meta.uid_seed is not None else content_key

    def pick(given: str | None, role: str) -> str:
        if given is not None:
            return given
        return random_uid() if meta.random_uids else deterministic_uid(seed, role)

    study = pick(meta.study_instance_uid, "study")
    series = pick(meta.series_instance_uid, f"series-{meta.series_number}-{meta.modality or ''}")
    frame = pick(meta.frame_of_reference_uid, "frame-of-reference")
    return seed, study, series, frame


def _content_key(pixels: NDArray[Any], *extra: object) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes())
    digest.update(repr(extra).encode())
    return digest.hexdigest()


def _series_modality(volume: Volume, meta: DicomMeta) -> str:
    modality = (meta.modality or volume.modality or "").upper()
    if modality in _SERIES_SOP:
        return modality
    if modality:
        raise InvalidInputError(
            f"write_dicom_series writes CT or MR series, got modality {modality!r}",
            where="volume.modality",
            hint="set volume.modality (or DicomMeta.modality) to 'CT' or 'MR'",
        )
    lo, hi = float(volume.array.min()), float(volume.array.max())
    # No modality given: values that look like Hounsfield units (air present, within the CT scale).
    return "CT" if -1100.0 <= lo <= -500.0 and hi <= 4100.0 else "MR"


def _slice_axes(volume: Volume) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    d = volume.direction
    row, col, slc = d[:, 0], d[:, 1], d[:, 2]
    gram = np.array([[row @ row, row @ col], [col @ row, col @ col]])
    if not np.allclose(gram, np.eye(2), atol=1e-4):
        raise GeometryError(
            f"direction columns x/y are not orthonormal: {d.tolist()}",
            where="volume.direction",
            hint="normalise the direction matrix or resample the volume (001 §7.2 b)",
        )
    normal = np.cross(row, col)
    if not (np.allclose(slc, normal, atol=1e-4) or np.allclose(slc, -normal, atol=1e-4)):
        raise GeometryError(
            f"slice axis {slc.tolist()} is not perpendicular to the image plane (sheared grid)",
            where="volume.direction",
            hint="resample the volume onto an orthogonal grid before writing DICOM",
        )
    return row, col, normal


class _SliceEncoder:
    """Encode one slice fast: the constant header is encoded once, varying elements per slice."""

    def __init__(self, base: Dataset, varying: list[BaseTag], charset: str | None) -> None:
        self.charset = charset
        self.varying = sorted(varying)
        bounds = [*self.varying, Tag(0x7FE0, 0x0010)]
        self.chunks: list[bytes] = []
        lower = Tag(0x0000, 0x0000)
        for upper in bounds:
            part = Dataset()
            for elem in base:
                if lower <= elem.tag < upper:
                    part.add(elem)
            self.chunks.append(_encode(part, charset))
            lower = upper

    def encode(self, values: Mapping[BaseTag, bytes], pixels: NDArray[Any], meta: bytes) -> bytes:
        out = [meta, self.chunks[0]]
        for tag, chunk in zip(self.varying, self.chunks[1:], strict=True):
            out += [values[tag], chunk]
        out.append(_pixel_element(pixels))
        return b"".join(out)
