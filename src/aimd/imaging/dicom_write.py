"""DICOM writers: a CT/MR series from a :class:`Volume`, a DX/CR radiograph from a 2-D image.

The files carry the full spatial header that 001 §7.2 b–e and App. B.1 ask for (Image Position /
Orientation (Patient), Pixel Spacing, Slice Thickness, Spacing Between Slices, Frame of Reference
UID) and store CT values with Rescale Slope/Intercept so Hounsfield units come back exactly (001
§7.2 f). Output is deterministic: UIDs derive from :class:`DicomMeta` (or from the pixel data and
geometry when no seed is given) and no "now" timestamps are written, so the same input gives
byte-identical files. A series is built in a temporary folder and renamed into place.

Example
-------
>>> import tempfile, pathlib, numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.full((2, 4, 4), -1000, np.int16), spacing=(0.8, 0.8, 2.5), modality="CT")
>>> paths = write_dicom_series(vol, pathlib.Path(tempfile.mkdtemp()) / "ct")
>>> [p.name for p in paths]
['IM00001.dcm', 'IM00002.dcm']
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    MRImageStorage,
)
from pydicom.valuerep import format_number_as_ds

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_bytes
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.core.ids import deterministic_uid, random_uid
from aimd.core.logging import get_logger
from aimd.imaging.volume import Volume

_log = get_logger("aimd.imaging.dicom_write")

_SERIES_SOP = {"CT": CTImageStorage, "MR": MRImageStorage}
_IMAGE_SOP = {"DX": DigitalXRayImageStorageForPresentation, "CR": ComputedRadiographyImageStorage}
_IMPLEMENTATION_UID = deterministic_uid("aimd", "implementation-class")
_IMPLEMENTATION_NAME = f"AIMD_{__version__}"[:16]
# Max lengths of the VRs the fields are written as (PS3.5 §6.2): SH/CS 16, LO/PN 64.
_MAX_LEN = {"station_name": 16, "accession_number": 16, "study_id": 16, "body_part_examined": 16}
_PATTERNS = {
    "patient_birth_date": r"(\d{8})?",
    "study_date": r"(\d{8})?",
    "study_time": r"(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?",
    "patient_age": r"(\d{3}[DWMY])?",
}
_UID = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
# DicomMeta fields written as type 2 (always present, may be empty) and type 3 (only when set).
_TYPE2 = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "study_date",
    "study_time",
    "accession_number",
    "referring_physician_name",
    "study_id",
    "manufacturer",
    "body_part_examined",
)
_TYPE3 = (
    "patient_age",
    "study_description",
    "series_description",
    "institution_name",
    "station_name",
    "manufacturer_model_name",
)
# Anatomic region (CID 4031) and DX view (CID 4010) codes for the body parts and views aimd writes.
_REGION_CODES = {"CHEST": ("816094009", "SCT", "Chest"), "ABDOMEN": ("818981001", "SCT", "Abdomen")}
_VIEW_CODES = {
    "AP": ("399348003", "SCT", "antero-posterior"),
    "PA": ("272479007", "SCT", "postero-anterior"),
    "LL": ("399173006", "SCT", "left lateral"),
    "RL": ("399198007", "SCT", "right lateral"),
}
# A written series is a new series: its UID (and the UID recipe) never comes from the source metadata.
_NOT_DERIVED = {"series_instance_uid", "uid_seed", "random_uids"}
_NUMERIC = {"series_number", "kvp", "window_center", "window_width", "slice_thickness"}
# Exactly representable decimal slopes tried (largest first) for non-integer values.
_EXACT_SLOPES = (
    0.5,
    0.25,
    0.2,
    0.125,
    0.1,
    0.0625,
    0.05,
    0.03125,
    0.025,
    0.02,
    0.015625,
    0.01,
    0.005,
    0.0025,
    0.002,
    0.001,
)


class DicomMeta(BaseModel):
    """Patient, study, series and equipment attributes written into DICOM headers.

    Every field has a safe default, so ``DicomMeta()`` works. UIDs left ``None`` are derived
    from ``uid_seed`` (or, without a seed, from the pixel data and geometry); ``random_uids=True``
    asks for fresh random UIDs instead. Dates are ``YYYYMMDD``, times ``HHMMSS``, age ``nnnY``.

    Example
    -------
    >>> DicomMeta(patient_name="ZHANG^WEI", patient_sex="M", study_date="20240312").patient_sex
    'M'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_name: str = ""
    patient_id: str = Field("", max_length=64)
    patient_birth_date: str = ""
    patient_sex: Literal["", "M", "F", "O"] = ""
    patient_age: str = ""
    study_instance_uid: str | None = None
    study_date: str = ""
    study_time: str = ""
    study_description: str = Field("", max_length=64)
    study_id: str = ""
    accession_number: str = ""
    series_instance_uid: str | None = None
    series_number: int = Field(1, ge=0, le=2**31 - 1)
    series_description: str = Field("", max_length=64)
    frame_of_reference_uid: str | None = None
    institution_name: str = Field("", max_length=64)
    manufacturer: str = Field("aimd", max_length=64)
    manufacturer_model_name: str = Field("aimd dicom writer", max_length=64)
    station_name: str = ""
    referring_physician_name: str = ""
    body_part_examined: str = ""
    kvp: float | None = Field(None, gt=0)
    modality: str | None = None
    window_center: float | None = None
    window_width: float | None = Field(None, gt=0)
    slice_thickness: float | None = Field(None, gt=0)
    uid_seed: str | None = None
    random_uids: bool = False

    @model_validator(mode="after")
    def _check_formats(self) -> DicomMeta:
        for name, pattern in _PATTERNS.items():
            if not re.fullmatch(pattern, getattr(self, name)):
                raise ValueError(f"{name} has the wrong DICOM format, got {getattr(self, name)!r}")
        for name, limit in _MAX_LEN.items():
            if len(getattr(self, name)) > limit:
                raise ValueError(f"{name} must be at most {limit} characters, got {getattr(self, name)!r}")
        for name in ("study_instance_uid", "series_instance_uid", "frame_of_reference_uid"):
            uid = getattr(self, name)
            if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
                raise ValueError(f"{name} is not a valid DICOM UID, got {uid!r}")
        for name, value in self:
            if isinstance(value, str) and "\\" in value:
                raise ValueError(f"{name} must not contain a backslash, got {value!r}")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "DicomMeta") -> DicomMeta:
        """Validate ``values`` (field names) into a ``DicomMeta``; bad values raise InvalidInputError."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "meta"
            raise InvalidInputError(
                f"invalid DICOM attribute {field}: {first['msg']}",
                where=where,
                hint="see aimd.imaging.dicom_write.DicomMeta for the accepted formats",
            ) from err

    @classmethod
    def from_volume(cls, volume: Volume) -> DicomMeta:
        """What ``volume.modality`` and ``volume.metadata`` tell: keys are field names or DICOM keywords
        (``PatientName``), top level or under ``"dicom"``; invalid values are skipped with a log line.
        Study and Frame of Reference UIDs are kept; the series always gets a new UID."""
        nested = volume.metadata.get("dicom")
        items = [*volume.metadata.items(), *(nested.items() if isinstance(nested, Mapping) else ())]
        valid: dict[str, Any] = {}
        for key, value in items:
            name = key if key in cls.model_fields else _FIELD_OF_KEYWORD.get(key)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if name is None or value is None or name in _NOT_DERIVED:
                continue
            if name not in _NUMERIC:  # ISO dates (2024-03-12) become DICOM DA (20240312)
                value = re.sub(r"^(\d{4})-(\d\d)-(\d\d)$", r"\1\2\3", str(value))
            try:
                cls.model_validate({**valid, name: value})
                valid[name] = value
            except ValidationError:
                _log.warning("dicom_meta.skipped", field=name, value=str(value)[:64])
        if volume.modality:
            valid["modality"] = volume.modality.upper()
        return cls.model_validate(valid)


def _keyword(field: str) -> str:
    """DICOM keyword of a DicomMeta field: ``patient_id`` → ``PatientID``, ``kvp`` → ``KVP``."""
    camel = "".join(part.capitalize() for part in field.split("_"))
    camel = camel.replace("Uid", "UID").replace("Kvp", "KVP")
    return camel[:-2] + "ID" if camel.endswith("Id") else camel


_FIELD_OF_KEYWORD = {_keyword(name): name for name in DicomMeta.model_fields} | {
    "study_uid": "study_instance_uid",
    "series_uid": "series_instance_uid",
}  # aimd.imaging.io metadata keys


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


def write_dicom_series(
    volume: Volume, out_dir: str | Path, *, meta: DicomMeta | None = None, overwrite: bool = False, fsync: bool = True
) -> list[Path]:
    """Write ``volume`` as a CT or MR DICOM series, one file per slice (``IM00001.dcm`` ...).

    Parameters
    ----------
    volume:
        The image; its LPS geometry becomes Image Position/Orientation (Patient), Pixel Spacing,
        Slice Thickness and Spacing Between Slices. CT values are stored as int16/uint16 with
        Rescale Slope/Intercept chosen so the HU come back exactly (001 §7.2 f).
    out_dir:
        Folder to create; it must not exist or be empty unless ``overwrite``.
    meta:
        Header attributes; default derived from ``volume.modality`` and ``volume.metadata``.
    overwrite:
        Replace an existing non-empty ``out_dir``.
    fsync:
        Flush each file to disk before the folder is renamed into place.

    Returns
    -------
    list[Path]
        The written files in slice order.

    Example
    -------
    >>> import tempfile, pathlib, numpy as np
    >>> vol = Volume(np.zeros((3, 2, 2), np.int16) - 1000, spacing=(1, 1, 2), modality="CT")
    >>> len(write_dicom_series(vol, pathlib.Path(tempfile.mkdtemp()) / "s"))
    3
    """
    out_dir = Path(out_dir)
    meta = meta if meta is not None else DicomMeta.from_volume(volume)
    modality = _series_modality(volume, meta)
    meta = meta.model_copy(update={"modality": modality})
    row, col, normal = _slice_axes(volume)
    stored, slope, intercept = _quantise(volume.array, where=str(out_dir))
    key = _content_key(stored, volume.geometry(), modality, slope, intercept)
    _, study_uid, series_uid, frame_uid = _uids(meta, key)
    charset = _charset(meta)
    sx, sy, sz = volume.spacing
    nz, ny, nx = volume.shape
    center, width = _window(meta, volume.metadata, modality, stored, slope, intercept)

    ds = Dataset()
    _common(ds, meta, modality, _SERIES_SOP[modality], charset, study_uid, series_uid)
    ds.update(
        {  # Frame of Reference, Image Plane, Image Pixel, VOI LUT (001 App. B.1)
            "PatientPosition": "HFS",
            "FrameOfReferenceUID": frame_uid,
            "PositionReferenceIndicator": "",
            "AcquisitionNumber": 1,
            "ImageOrientationPatient": [_ds(v) for v in (*row, *col)],
            "PixelSpacing": [_ds(sy), _ds(sx)],
            "SliceThickness": _ds(meta.slice_thickness or sz),
            "SpacingBetweenSlices": _ds(sz),
            "Rows": ny,
            "Columns": nx,
            "BitsStored": 16,
            "HighBit": 15,
            "PixelRepresentation": 1 if stored.dtype == np.dtype("<i2") else 0,
            "WindowCenter": _ds(center),
            "WindowWidth": _ds(width),
        }
    )
    if not meta.body_part_examined:
        ds.Laterality = ""  # type 2C: the body part might be a paired one
    rescale = {"RescaleIntercept": _ds(intercept), "RescaleSlope": _ds(slope)}
    if modality == "CT":
        ds.update({"KVP": _ds(meta.kvp) if meta.kvp else "", **rescale, "RescaleType": "HU"})
    else:
        ds.update(
            {
                "ScanningSequence": "RM",
                "SequenceVariant": "NONE",
                "ScanOptions": "",
                "MRAcquisitionType": "3D",
                "RepetitionTime": "",
                "EchoTime": "",
                "EchoTrainLength": "",
            }
        )
        if (slope, intercept) != (1.0, 0.0):
            ds.update(rescale)
    tags = [Tag(0x0008, 0x0018), Tag(0x0020, 0x0013), Tag(0x0020, 0x0032), Tag(0x0020, 0x1041)]
    encoder = _SliceEncoder(ds, tags, charset)
    positions = volume.index_to_world(np.stack([np.zeros(nz), np.zeros(nz), np.arange(nz)], axis=1))
    width_digits = max(5, len(str(nz)))
    paths: list[Path] = []
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for k in range(nz):
            sop_uid = random_uid() if meta.random_uids else deterministic_uid(series_uid, "sop", str(k + 1))
            values = {
                tags[0]: _element(tags[0], b"UI", sop_uid),
                tags[1]: _element(tags[1], b"IS", str(k + 1)),
                tags[2]: _element(tags[2], b"DS", "\\".join(_ds(v) for v in positions[k])),
                tags[3]: _element(tags[3], b"DS", _ds(float(positions[k] @ normal))),
            }
            data = encoder.encode(values, stored[k], _preamble_and_meta(_SERIES_SOP[modality], sop_uid))
            name = f"IM{k + 1:0{width_digits}d}.dcm"
            with open(tmp / name, "wb") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            paths.append(out_dir / name)
        os.chmod(tmp, _default_mode(directory=True))
    _log.debug("dicom_write.series", out=str(out_dir), slices=nz, modality=modality)
    return paths


def write_dicom_image(
    image2d: ArrayLike,
    out_path: str | Path,
    *,
    pixel_spacing: tuple[float, float],
    meta: DicomMeta | None = None,
    modality: str = "DX",
    view_position: str = "AP",
    patient_orientation: tuple[str, str] = ("L", "F"),
    overwrite: bool = False,
) -> Path:
    """Write a projection radiograph: Digital X-Ray Image Storage — For Presentation (or CR).

    Parameters
    ----------
    image2d:
        ``(rows, columns)`` unsigned integer values (0–65535), higher = more attenuation
        (MONOCHROME2, Pixel Intensity Relationship LOG).
    out_path:
        File to write atomically; must not exist unless ``overwrite``.
    pixel_spacing:
        ``(row spacing, column spacing)`` in mm at the detector, DICOM order; written as
        Imager Pixel Spacing (and Pixel Spacing).
    meta:
        Header attributes; ``DicomMeta()`` when omitted.
    modality:
        ``"DX"`` (default) or ``"CR"``.
    view_position, patient_orientation:
        View Position (``AP``/``PA``/``LL``) and the patient directions of the column and row axes.

    Example
    -------
    >>> import tempfile, pathlib, numpy as np
    >>> img = np.arange(12, dtype=np.uint16).reshape(3, 4)
    >>> write_dicom_image(img, pathlib.Path(tempfile.mkdtemp()) / "dx.dcm", pixel_spacing=(0.2, 0.2)).name
    'dx.dcm'
    """
    out_path = Path(out_path)
    meta = meta if meta is not None else DicomMeta()
    modality = modality.upper()
    if modality not in _IMAGE_SOP:
        raise InvalidInputError(f"modality must be 'DX' or 'CR', got {modality!r}", where=str(out_path))
    img = np.asarray(image2d)
    if img.ndim != 2 or min(img.shape) < 1:
        raise InvalidInputError(
            f"a radiograph needs a 2-D (rows, columns) array, got shape {img.shape}", where=str(out_path)
        )
    if (
        img.dtype.kind not in "iuf"
        or not np.isfinite(img).all()
        or not np.array_equal(img, np.round(img))
        or img.min() < 0
        or img.max() > 65535
    ):
        raise InvalidInputError(
            f"radiograph pixels must be integers in [0, 65535], got dtype {img.dtype} range [{img.min()}, {img.max()}]",
            where=str(out_path),
            hint="scale and round the image to unsigned integers (e.g. 12-bit) first",
        )
    if len(pixel_spacing) != 2 or min(pixel_spacing) <= 0:
        raise InvalidInputError(f"pixel_spacing needs two values > 0 mm, got {pixel_spacing}", where=str(out_path))
    if out_path.exists() and not overwrite:
        raise InvalidInputError(
            "output file already exists", where=str(out_path), hint="choose a new path or pass overwrite=True"
        )
    stored = img.astype("<u2")
    meta = meta.model_copy(update={"modality": modality})
    seed, study_uid, series_uid, _ = _uids(meta, _content_key(stored, tuple(pixel_spacing), modality))
    sop_uid = random_uid() if meta.random_uids else deterministic_uid(series_uid, "sop", "1")
    charset = _charset(meta)
    bits = max(12, int(stored.max()).bit_length())

    center, width = _window(meta, {}, modality, stored[None], 1.0, 0.0)
    ds = Dataset()
    _common(ds, meta, modality, _IMAGE_SOP[modality], charset, study_uid, series_uid)
    ds.update(
        {
            "SOPInstanceUID": sop_uid,
            "InstanceNumber": 1,
            "PatientOrientation": list(patient_orientation),
            "ViewPosition": view_position,
            "Rows": stored.shape[0],
            "Columns": stored.shape[1],
            "BitsStored": bits,
            "HighBit": bits - 1,
            "PixelRepresentation": 0,
            "ImagerPixelSpacing": [_ds(v) for v in pixel_spacing],
            "PixelSpacing": [_ds(v) for v in pixel_spacing],
            "PixelSpacingCalibrationType": "GEOMETRY",
            "PixelSpacingCalibrationDescription": "parallel projection, magnification 1",
            "EstimatedRadiographicMagnificationFactor": "1",
            "BurnedInAnnotation": "NO",
            "WindowCenter": _ds(meta.window_center if meta.window_center is not None else center),
            "WindowWidth": _ds(meta.window_width if meta.window_width is not None else width),
        }
    )
    if meta.kvp:
        ds.KVP = _ds(meta.kvp)
    if modality == "DX":  # DX Series, DX Image, DX Detector, DX Positioning modules
        view = _VIEW_CODES.get(view_position.upper())
        ds.update(
            {
                "PresentationIntentType": "FOR PRESENTATION",
                "ImageLaterality": "U",
                "PixelIntensityRelationship": "LOG",
                "PixelIntensityRelationshipSign": 1,
                "RescaleIntercept": "0",
                "RescaleSlope": "1",
                "RescaleType": "US",
                "PresentationLUTShape": "IDENTITY",
                "LossyImageCompression": "00",
                "DetectorType": "DIRECT",
                "AcquisitionContextSequence": Sequence(),
                "PositionerType": "NONE",
                "ViewCodeSequence": Sequence([_code(*view)] if view else []),
            }
        )
    region = _REGION_CODES.get(meta.body_part_examined.upper())
    ds.AnatomicRegionSequence = Sequence([_code(*region)] if region else [])
    body = _encode(ds, charset)
    data = _preamble_and_meta(_IMAGE_SOP[modality], sop_uid) + body + _pixel_element(stored)
    atomic_write_bytes(out_path, data)
    os.chmod(out_path, _default_mode(directory=False))
    _log.debug("dicom_write.image", out=str(out_path), modality=modality, seed=seed)
    return out_path


__all__ = ["DicomMeta", "write_dicom_image", "write_dicom_series"]
