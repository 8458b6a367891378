"""Clean the free-text fields and header extensions of NIfTI files, leaving voxels and geometry as is.

A NIfTI header has three text fields (``descrip``, ``aux_file``, ``intent_name``; NIfTI-1 also the unused
``db_name`` and ``data_type``, NIfTI-2 ``unused_str``) and may carry extensions — converters store
whole DICOM headers there. Free text cannot be proven clean (a bare name "Li Na" matches no rule), so
aimd blanks every non-empty text field whatever the rules say, and blanks every extension in place (the
extension flag is cleared and the bytes zeroed, so ``vox_offset`` and the voxel bytes stay where they
were). An Analyze 7.5 header (no NIfTI magic) also loses its data-history text (originator, generated,
scan number, patient id, exposure date and time). ``clean`` is still run on each field, so the log can
say which rules would have fired. Files with nothing to clean are returned byte for byte.

Example
-------
>>> import nibabel as nib, numpy as np
>>> img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
>>> img.header["descrip"] = b"Patient: Hua Song"
>>> out, info = clean_nifti_bytes(img.to_bytes(), lambda s: s.replace("Hua Song", "[NAME]"))
>>> nib.Nifti1Image.from_bytes(out).header["descrip"].item(), info["fields_blanked"]
(b'', ['descrip'])
"""

from __future__ import annotations

import gzip
import math
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from aimd.core.errors import InvalidInputError

_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name", "data_type", "unused_str")
# Analyze 7.5 data_history text: originator, generated, scannum, patient_id, exp_date, exp_time, hist_un0.
_ANALYZE_HISTORY = slice(253, 316)


def clean_nifti_bytes(
    data: bytes, clean: Callable[[str], str], *, where: str = "NIfTI", detached_header: bool = False
) -> tuple[bytes, dict[str, Any]]:
    """Return ``data`` with text fields passed through ``clean`` and extensions blanked.

    Parameters
    ----------
    data:
        A ``.nii``/``.nii.gz`` file (or an Analyze-style ``.hdr`` when ``detached_header``).
    clean:
        Text de-identification of one field value.

    Raises
    ------
    InvalidInputError
        Not a NIfTI-1/2 file, or a corrupt one.
    """
    compressed = data[:2] == b"\x1f\x8b"
    try:
        raw = bytearray(gzip.decompress(data) if compressed else data)
    except (OSError, EOFError, zlib.error) as err:
        raise InvalidInputError(f"corrupt gzip stream ({err})", where=where, hint="re-export the image") from None
    dtype = _header_dtype(raw, where)
    size = dtype.itemsize
    if len(raw) < size:
        raise InvalidInputError("file shorter than a NIfTI header", where=where, hint="re-export the image")
    info: dict[str, Any] = {"fields_blanked": [], "fields_with_rule_hits": [], "extensions_removed": 0}
    for name in _TEXT_FIELDS:
        if name not in dtype.fields:
            continue
        field_dtype, offset = dtype.fields[name][:2]
        width = field_dtype.itemsize
        stored = bytes(raw[offset : offset + width])
        if not stored.strip(b"\0 "):
            continue
        value = stored.split(b"\0", 1)[0].decode("latin-1")
        if clean(value) != value:
            info["fields_with_rule_hits"].append(name)
        raw[offset : offset + width] = bytes(width)
        info["fields_blanked"].append(name)
    if size == 348 and bytes(raw[344:347]) not in (b"n+1", b"ni1") and any(raw[_ANALYZE_HISTORY]):
        raw[_ANALYZE_HISTORY] = bytes(_ANALYZE_HISTORY.stop - _ANALYZE_HISTORY.start)
        info["fields_blanked"].append("analyze_history")
    vox_float = _read_field(raw, dtype, "vox_offset")
    if not math.isfinite(vox_float) or vox_float < 0:
        raise InvalidInputError(f"vox_offset is {vox_float}", where=where, hint="re-export the image")
    vox_offset = int(vox_float)
    ext_end = len(raw) if detached_header else min(vox_offset, len(raw))
    if len(raw) >= size + 4 and raw[size] != 0 and ext_end > size:
        info["extensions_removed"] = _count_extensions(raw, size, ext_end, dtype.byteorder)
        raw[size:ext_end] = bytes(ext_end - size)
    if not detached_header:
        _check_single_file(raw, dtype, vox_offset, where)
    if not info["fields_blanked"] and not info["extensions_removed"]:
        return data, info
    out = bytes(raw)
    return (gzip.compress(out, compresslevel=6, mtime=0) if compressed else out), info


def _check_single_file(raw: bytearray, dtype: Any, vox_offset: int, where: str) -> None:
    """A ``.nii`` must parse with nibabel and hold every voxel its header announces."""
    header = np.frombuffer(bytes(raw[: dtype.itemsize]), dtype=dtype)[0]
    try:
        image = (nib.Nifti2Image if dtype.itemsize == 540 else nib.Nifti1Image).from_bytes(bytes(raw))
        shape = image.shape
        bits = int(header["bitpix"])
    except Exception as err:
        raise InvalidInputError(
            f"unreadable NIfTI ({type(err).__name__})", where=where, hint="re-export the image"
        ) from None
    expected = vox_offset + int(np.prod(shape, dtype=np.int64)) * max(bits, 0) // 8
    if len(raw) < expected:
        raise InvalidInputError(
            f"truncated NIfTI: {len(raw)} bytes, the header describes {expected}",
            where=where,
            hint="re-export the image",
        )


def check_analyze_pair(img_path: Path, *, where: str) -> None:
    """Refuse an Analyze/NIfTI-pair ``.img`` unless its ``.hdr`` is beside it and describes its size.

    The ``.img`` holds only voxels; anything else (a renamed disk image, a photo) is not handled.

    Raises
    ------
    InvalidInputError
        No ``.hdr`` beside it, the header is unreadable, or the file size differs from the voxel count.
    """
    header_path = img_path.with_suffix(".hdr")
    if not header_path.is_file() or header_path.is_symlink():
        raise InvalidInputError(
            "an .img file without its .hdr header",
            where=where,
            hint="keep the .hdr beside the .img, or convert the pair to NIfTI",
        )
    raw = bytearray(header_path.read_bytes()[:348])
    dtype = _header_dtype(raw, where)
    if dtype.itemsize != 348 or len(raw) < 348:
        raise InvalidInputError(
            "the .hdr beside this .img is not an Analyze/NIfTI-1 header", where=where, hint="convert the pair to NIfTI"
        )
    header = np.frombuffer(bytes(raw), dtype=dtype)[0]
    dims = [int(d) for d in header["dim"][1 : 1 + max(0, min(7, int(header["dim"][0])))]]
    bits = int(header["bitpix"])
    if not dims or any(d <= 0 for d in dims) or bits <= 0:
        raise InvalidInputError(
            f"the .hdr gives no valid image size (dim {dims}, bitpix {bits})",
            where=where,
            hint="convert the pair to NIfTI",
        )
    offset = int(header["vox_offset"]) if bytes(raw[344:347]) == b"ni1" else 0
    expected = offset + int(np.prod(dims, dtype=np.int64)) * bits // 8
    actual = img_path.stat().st_size
    if actual != expected:
        raise InvalidInputError(
            f"size {actual} bytes, the .hdr describes {expected}: not this image's voxels",
            where=where,
            hint="remove the file or restore the matching .hdr",
        )


def _header_dtype(raw: bytearray, where: str) -> Any:
    if len(raw) < 4:
        raise InvalidInputError("file too short for a NIfTI header", where=where, hint="re-export the image")
    for order in ("<", ">"):
        sizeof = int.from_bytes(raw[:4], "little" if order == "<" else "big")
        if sizeof == 348:
            return nib.nifti1.header_dtype.newbyteorder(order)
        if sizeof == 540:
            return nib.nifti2.header_dtype.newbyteorder(order)
    raise InvalidInputError(
        "not a NIfTI file (sizeof_hdr is neither 348 nor 540)",
        where=where,
        hint="only NIfTI-1/2 images are cleaned; remove other files or convert them",
    )


def _read_field(raw: bytearray, dtype: Any, name: str) -> float:
    field_dtype, offset = dtype.fields[name][:2]
    return float(np.frombuffer(bytes(raw[offset : offset + field_dtype.itemsize]), dtype=field_dtype)[0])


def _count_extensions(raw: bytearray, start: int, end: int, byteorder: str) -> int:
    order = "big" if byteorder == ">" else "little"
    pos, count = start + 4, 0
    while pos + 8 <= end:
        esize = int.from_bytes(raw[pos : pos + 4], order)
        if esize < 8 or pos + esize > end:
            break
        count += 1
        pos += esize
    return max(count, 1)


__all__ = ["check_analyze_pair", "clean_nifti_bytes"]
