"""Reading DICOM files for de-identification (complete, decodable, pixel data consistent) and writing them back."""

from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from aimd.core.errors import InvalidInputError


def read_dicom(path: str | Path) -> Dataset:
    """Read a whole DICOM file, refusing anything that is not a complete, parseable dataset.

    Raises
    ------
    InvalidInputError
        Not DICOM, truncated, or pixel data shorter than Rows × Columns × frames × samples × bits.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> read_dicom(get_testdata_file("CT_small.dcm")).Modality
    'CT'
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("file not found", where=str(path), hint="check the path")
    try:
        ds = pydicom.dcmread(path, force=False)
        _check_complete(ds, path)
    except InvalidDicomError:
        try:
            ds = pydicom.dcmread(path, force=True)
            _check_complete(ds, path)
        except InvalidInputError:
            raise
        except Exception as err:
            raise InvalidInputError(
                f"not a readable DICOM file ({type(err).__name__})",
                where=str(path),
                hint="re-export the file from the PACS or remove it",
            ) from None
        if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
            raise InvalidInputError(
                "not a DICOM file (no preamble and no SOP attributes)",
                where=str(path),
                hint="remove the file or give it a proper DICOM header",
            ) from None
    except Exception as err:
        if isinstance(err, InvalidInputError):
            raise
        raise InvalidInputError(
            f"corrupt DICOM file ({type(err).__name__})",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        ) from None
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise InvalidInputError(
            "no SOP Class or Instance UID: truncated or not a DICOM object",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        )
    try:
        _check_pixel_data(ds, path)
    except InvalidInputError:
        raise
    except Exception as err:  # e.g. a TransferSyntaxUID that names no transfer syntax
        raise InvalidInputError(
            f"corrupt DICOM file ({type(err).__name__}: {err})",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        ) from None
    sop_class = UID(str(ds.get("SOPClassUID", "") or ""))
    if (
        "Image Storage" in sop_class.name
        and "PixelData" not in ds
        and "FloatPixelData" not in ds
        and "DoubleFloatPixelData" not in ds
    ):
        raise InvalidInputError(
            f"{sop_class.name} without pixel data: the file is truncated",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        )
    return ds


def _check_complete(ds: Dataset, path: Path) -> None:
    """Convert every element now, refusing values shorter than their stated length (a cut file)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if (
            isinstance(raw, RawDataElement)
            and raw.value is not None
            and raw.length != 0xFFFFFFFF
            and len(raw.value) < raw.length
        ):
            raise InvalidInputError(
                f"file ends inside attribute {tag} ({len(raw.value)} of {raw.length} bytes): truncated",
                where=str(path),
                hint="re-export the file from the PACS",
            )
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value or []:
                _check_complete(item, path)


def _check_pixel_data(ds: Dataset, path: Path) -> None:
    if "PixelData" not in ds:
        return
    ts = _transfer_syntax(ds)
    if ts.is_compressed:
        return
    try:
        bits = int(ds.BitsAllocated)
        count = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
        count *= int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as err:
        raise InvalidInputError(
            f"image attributes missing or invalid ({err})",
            where=str(path),
            hint="Rows, Columns and BitsAllocated must be present",
        ) from None
    expected = (count * bits + 7) // 8
    if str(ds.get("PhotometricInterpretation", "")).startswith("YBR_FULL_422"):
        expected = expected * 2 // 3  # two chroma samples shared by each pair of pixels
    if len(ds.PixelData) < expected:
        raise InvalidInputError(
            f"pixel data truncated: {len(ds.PixelData)} bytes, {expected} expected",
            where=f"{path} (7FE0,0010)",
            hint="re-export the file from the PACS",
        )


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian


def write_dicom(ds: Dataset, path: str | Path) -> None:
    """Write ``ds`` with a fresh file meta header (new MediaStorageSOPInstanceUID, same transfer syntax).

    Example
    -------
    >>> import tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.dcm"
    >>> write_dicom(read_dicom(get_testdata_file("CT_small.dcm")), out)
    >>> pydicom.dcmread(out).file_meta.TransferSyntaxUID.name
    'Explicit VR Little Endian'
    """
    ts = _transfer_syntax(ds)
    old = getattr(ds, "file_meta", None)
    meta = FileMetaDataset()
    sop_class = ds.get("SOPClassUID") or (old.get("MediaStorageSOPClassUID") if old is not None else None)
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    elif old is not None and "MediaStorageSOPInstanceUID" in old:
        meta.MediaStorageSOPInstanceUID = old.MediaStorageSOPInstanceUID
    if "MediaStorageSOPClassUID" not in meta or "MediaStorageSOPInstanceUID" not in meta:
        raise InvalidInputError(
            "SOPClassUID or SOPInstanceUID missing: not a storable DICOM object",
            where=str(path),
            hint="re-export the object from the PACS or remove it",
        )
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
