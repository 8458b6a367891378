"""Turn what a client sends into a checked :class:`Volume` — or a 4xx error naming the field.

Accepted bodies (003 §3.3): one NIfTI file (``.nii``/``.nii.gz``), a DICOM series as several files
or one zip, a single 2-D DICOM or PNG image for 2-D models. Everything is written under a private
temporary folder first; nothing reaches the result store unless inference succeeds.

Guards: total upload size, voxel count, zip entries that would escape the folder (``../``, absolute
names, links), zip bombs (expanded size or compression ratio over the limit), non-DICOM or truncated
files, series with missing or duplicated slices.

Example
-------
>>> import io, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("../evil.dcm", b"x")
>>> try:
...     read_upload([("series.zip", buf.getvalue())], UploadLimits(), "/tmp")
... except Exception as err:
...     print(type(err).__name__, err.where)
InvalidInputError files[0] series.zip
"""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pydicom
from pydantic import BaseModel, ConfigDict, Field

from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.findings import Severity
from aimd.imaging.volume import Volume
from aimd.serving.errors import UnsupportedMediaError, UploadTooLargeError

_NIFTI_MAGIC = (b"n+1\x00", b"ni1\x00")
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class UploadLimits(BaseModel):
    """Size limits of one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(512 * 2**20, gt=0, description="largest upload (and expanded zip) in bytes")
    max_voxels: int = Field(512 * 512 * 1024, gt=0, description="largest image in voxels")
    max_files: int = Field(5000, gt=0, description="most files in one series")
    max_zip_ratio: float = Field(200.0, gt=1, description="largest compression ratio of a zip entry")


@dataclass
class InputImage:
    """A checked input: the volume, its DICOM datasets (for SEG/SR) and its content hash."""

    volume: Volume
    kind: str
    sha256: str
    datasets: list[pydicom.Dataset] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def content_hash(parts: list[bytes]) -> str:
    """SHA-256 over the sorted SHA-256 of each part: the same files in any order hash the same.

    Example
    -------
    >>> content_hash([b"a", b"b"]) == content_hash([b"b", b"a"])
    True
    """
    digests = sorted(hashlib.sha256(p).hexdigest() for p in parts)
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def _safe_name(name: str, where: str) -> PurePosixPath:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and pure.parts[0].endswith(":")):
        raise InvalidInputError(
            f"zip entry {name!r} would be written outside the upload folder",
            where=where,
            hint="zip the series with relative names and no '..'",
        )
    return pure


def unzip_safely(data: bytes, dest: Path, limits: UploadLimits, where: str) -> list[tuple[str, bytes]]:
    """The files of a zip archive, after checking names, links, expanded size and compression ratio."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as err:
        raise InvalidInputError(
            f"not a readable zip archive ({err})", where=where, hint="send an intact .zip of the DICOM files"
        ) from err
    files = [i for i in infos if not i.is_dir()]
    if len(files) > limits.max_files:
        raise UploadTooLargeError(
            f"zip holds {len(files)} files, more than the limit {limits.max_files}",
            where=where,
            hint="send one series per request",
        )
    total = 0
    for info in files:
        _safe_name(info.filename, where)
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidInputError(
                f"zip entry {info.filename!r} is a symbolic link",
                where=where,
                hint="zip the files themselves, not links",
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_zip_ratio and info.file_size > 2**20:
            raise UploadTooLargeError(
                f"zip entry {info.filename!r} expands {ratio:.0f}× (zip bomb guard: at most "
                f"{limits.max_zip_ratio:.0f}×)",
                where=where,
                hint="send the files uncompressed",
            )
    if total > limits.max_bytes:
        raise UploadTooLargeError(
            f"zip expands to {total} bytes, more than the limit {limits.max_bytes}",
            where=where,
            hint="send one series per request, or raise --max-upload-mb",
        )
    out: list[tuple[str, bytes]] = []
    read = 0
    for info in files:
        with archive.open(info) as handle:  # the declared sizes may lie: count what is really read
            chunk = handle.read(limits.max_bytes - read + 1)
        read += len(chunk)
        if read > limits.max_bytes:
            raise UploadTooLargeError(
                f"zip expands beyond the limit {limits.max_bytes} bytes",
                where=where,
                hint="send the files uncompressed",
            )
        out.append((info.filename, chunk))
    return out


def _check_voxels(volume: Volume, limits: UploadLimits, where: str) -> None:
    n = int(np.prod(volume.shape))
    if n > limits.max_voxels:
        raise UploadTooLargeError(
            f"image has {n} voxels {volume.shape}, more than the limit {limits.max_voxels}",
            where=where,
            hint="crop or resample the series, or raise --max-voxels",
        )


def _read_png(data: bytes, where: str) -> Volume:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            arr = np.asarray(img.convert("I;16") if img.mode in ("I", "I;16", "I;16B") else img.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise InvalidInputError(f"PNG cannot be decoded ({err})", where=where, hint="send an intact PNG") from err
    return Volume(
        arr[None].astype(np.uint16 if arr.dtype != np.uint8 else np.uint8),
        spacing=(1.0, 1.0, 1.0),
        metadata={"bits_stored": 16 if arr.dtype != np.uint8 else 8},
    )


def _kind(name: str, data: bytes) -> str:
    if data[:2] == b"PK":
        return "zip"
    if data[:8] == _PNG_MAGIC:
        return "png"
    if data[128:132] == b"DICM":
        return "dicom"
    if data[:2] == b"\x1f\x8b" or data[344:348] in _NIFTI_MAGIC or name.lower().endswith((".nii", ".nii.gz")):
        return "nifti"
    return "unknown"


def _read_dicom_files(named: list[tuple[str, bytes]], folder: Path, where: str) -> tuple[Volume, list[pydicom.Dataset]]:
    from aimd.imaging.dicom_read import read_dicom_series
    from aimd.imaging.geometry import check_volume

    folder.mkdir(parents=True, exist_ok=True)
    datasets = []
    for k, (name, data) in enumerate(named):
        field_name = f"{where}[{k}] {name}"
        if data[128:132] != b"DICM":
            raise InvalidInputError(
                "not a DICOM file (no 'DICM' marker at byte 128)",
                where=field_name,
                hint="send only DICOM Part 10 files of one series",
            )
        try:
            ds = pydicom.dcmread(io.BytesIO(data))
            _ = ds.PixelData, ds.Rows, ds.Columns
            expected = (
                int(ds.Rows)
                * int(ds.Columns)
                * int(ds.get("SamplesPerPixel", 1))
                * int(ds.get("NumberOfFrames", 1) or 1)
                * (int(ds.BitsAllocated) // 8)
            )
            if not ds.file_meta.TransferSyntaxUID.is_compressed and len(ds.PixelData) < expected:
                raise InvalidInputError(
                    f"pixel data holds {len(ds.PixelData)} bytes, the header needs {expected}",
                    where=field_name,
                    hint="the file is truncated: re-export it",
                )
        except InvalidInputError:
            raise
        except Exception as err:  # pydicom raises many types for damaged files
            raise InvalidInputError(
                f"DICOM file cannot be read ({type(err).__name__}: {err})",
                where=field_name,
                hint="the file is damaged or truncated: re-export it",
            ) from err
        datasets.append(ds)
        (folder / f"{k:05d}.dcm").write_bytes(data)
    series = {str(ds.get("SeriesInstanceUID", "")) for ds in datasets}
    if len(series) > 1:
        raise InvalidInputError(
            f"the files belong to {len(series)} series", where=where, hint="send one series per request"
        )
    try:
        volume = read_dicom_series(folder)
    except AimdError as err:
        raise InvalidInputError(err.message, where=where, hint=err.hint) from err
    errors = [f for f in check_volume(volume) if f.severity is Severity.ERROR]
    if errors:
        raise InvalidInputError(
            f"series geometry: {errors[0].message} ({errors[0].code})",
            where=where,
            hint=errors[0].hint or "send the complete series",
        )
    return volume, datasets


def read_upload(
    parts: list[tuple[str, bytes]], limits: UploadLimits, workdir: str | Path, where: str = "files"
) -> InputImage:
    """Read uploaded files (``(filename, bytes)`` pairs) into an :class:`InputImage`.

    Raises :class:`InvalidInputError` (or a subclass carrying its HTTP status) naming the field.
    """
    if not parts:
        raise InvalidInputError(
            "no file uploaded", where=where, hint="send a NIfTI file, DICOM files, a zip of a series or a PNG"
        )
    total = sum(len(d) for _, d in parts)
    if total > limits.max_bytes:
        raise UploadTooLargeError(
            f"upload is {total} bytes, more than the limit {limits.max_bytes}",
            where=where,
            hint="send one series per request, or raise --max-upload-mb",
        )
    work = Path(workdir)
    named = list(parts)
    first = f"{where}[0] {named[0][0]}"
    if len(named) == 1 and _kind(*named[0]) == "zip":
        named = unzip_safely(named[0][1], work / "unzipped", limits, first)
        if not named:
            raise InvalidInputError("zip holds no files", where=first, hint="zip the DICOM files of one series")
        named = [
            (n, d)
            for n, d in named
            if not PurePosixPath(n).name.startswith(".") and PurePosixPath(n).name.upper() != "DICOMDIR"
        ]
    kinds = {_kind(n, d) for n, d in named}
    digest = content_hash([d for _, d in named])
    if len(named) == 1 and kinds == {"nifti"}:
        from aimd.imaging.nifti_io import read_nifti

        name, data = named[0]
        path = work / ("input.nii.gz" if data[:2] == b"\x1f\x8b" else "input.nii")
        path.write_bytes(data)
        try:
            volume = read_nifti(path)
        except AimdError as err:
            raise InvalidInputError(err.message, where=first, hint=err.hint) from err
        except Exception as err:
            raise InvalidInputError(
                f"NIfTI file cannot be read ({type(err).__name__}: {err})",
                where=first,
                hint="send an intact .nii or .nii.gz",
            ) from err
        _check_voxels(volume, limits, first)
        return InputImage(volume, "nifti", digest, files=[name])
    if len(named) == 1 and kinds == {"png"}:
        volume = _read_png(named[0][1], first)
        _check_voxels(volume, limits, first)
        return InputImage(volume, "png", digest, files=[named[0][0]])
    if kinds - {"dicom"}:
        bad = next(k for k, (n, d) in enumerate(named) if _kind(n, d) != "dicom")
        if "dicom" in kinds or len(named) > 1:
            raise InvalidInputError(
                "not a DICOM file (no 'DICM' marker at byte 128)",
                where=f"{where}[{bad}] {named[bad][0]}",
                hint="send only DICOM Part 10 files of one series",
            )
        raise UnsupportedMediaError(
            "unrecognised file: not NIfTI, DICOM, zip or PNG",
            where=first,
            hint="send a .nii/.nii.gz, DICOM files, a zip of a series or a PNG",
        )
    if len(named) > limits.max_files:
        raise UploadTooLargeError(
            f"{len(named)} files, more than the limit {limits.max_files}",
            where=where,
            hint="send one series per request",
        )
    volume, datasets = _read_dicom_files(named, work / "dicom", where)
    _check_voxels(volume, limits, where)
    return InputImage(volume, "dicom", digest, datasets=datasets, files=[n for n, _ in named])


def volume_from_datasets(
    datasets: list[pydicom.Dataset], workdir: str | Path, limits: UploadLimits, where: str
) -> InputImage:
    """An :class:`InputImage` from DICOM datasets retrieved from a PACS (same checks as an upload)."""
    parts = []
    for k, ds in enumerate(datasets):
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        parts.append((f"{k:05d}.dcm", buf.getvalue()))
    return read_upload(parts, limits, workdir, where=where)


__all__ = ["InputImage", "UploadLimits", "content_hash", "read_upload", "unzip_safely", "volume_from_datasets"]
