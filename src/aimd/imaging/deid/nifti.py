"""Clean the free-text fields and header extensions of NIfTI files, leaving voxels and geometry as is.

A NIfTI header has three text fields (``descrip``, ``aux_file``, ``intent_name``; NIfTI-1 also
``db_name``) and may carry extensions — converters store whole DICOM headers there. aimd runs the text
rules on the fields and blanks every extension in place (the extension flag is cleared and the bytes
zeroed, so ``vox_offset`` and the voxel bytes stay where they were). Files with nothing to clean are
returned byte for byte.

Example
-------
>>> import nibabel as nib, numpy as np
>>> img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
>>> img.header["descrip"] = b"Patient: Hua Song"
>>> out, info = clean_nifti_bytes(img.to_bytes(), lambda s: s.replace("Hua Song", "[NAME]"))
>>> nib.Nifti1Image.from_bytes(out).header["descrip"].item()
b'Patient: [NAME]'
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import nibabel as nib

from aimd.core.errors import InvalidInputError

_TEXT_FIELDS = ("descrip", "aux_file", "intent_name", "db_name")


def clean_nifti_bytes(data: bytes, clean: Callable[[str], str], *, where: str = "NIfTI",
                      detached_header: bool = False) -> tuple[bytes, dict[str, Any]]:
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
    except (OSError, EOFError) as err:
        raise InvalidInputError(f"corrupt gzip stream ({err})", where=where,
                                hint="re-export the image") from None
    dtype = _header_dtype(raw, where)
    size = dtype.itemsize
    if len(raw) < size:
        raise InvalidInputError("file shorter than a NIfTI header", where=where, hint="re-export the image")
    info: dict[str, Any] = {"fields_cleaned": [], "extensions_removed": 0}
    for name in _TEXT_FIELDS:
        if name not in dtype.fields:
            continue
        field_dtype, offset = dtype.fields[name][:2]
        width = field_dtype.itemsize
        value = bytes(raw[offset:offset + width]).split(b"\0", 1)[0].decode("latin-1")
        cleaned = clean(value)
        if cleaned != value:
            encoded = cleaned.encode("ascii", "replace")[: width - 1]
            raw[offset:offset + width] = encoded.ljust(width, b"\0")
            info["fields_cleaned"].append(name)
    vox_offset = int(_read_field(raw, dtype, "vox_offset"))
    ext_end = len(raw) if detached_header else min(vox_offset, len(raw))
    if len(raw) >= size + 4 and raw[size] != 0 and ext_end > size:
        info["extensions_removed"] = _count_extensions(raw, size, ext_end, dtype.byteorder)
        raw[size:ext_end] = bytes(ext_end - size)
    if not info["fields_cleaned"] and not info["extensions_removed"]:
        return data, info
    if not detached_header:
        try:
            nib.Nifti2Image.from_bytes(bytes(raw)) if size == 540 else nib.Nifti1Image.from_bytes(bytes(raw))
        except Exception as err:
            raise InvalidInputError(f"NIfTI unreadable after cleaning ({type(err).__name__})", where=where,
                                    hint="re-export the image") from None
    out = bytes(raw)
    return (gzip.compress(out, compresslevel=6, mtime=0) if compressed else out), info


def _header_dtype(raw: bytearray, where: str) -> Any:
    if len(raw) < 4:
        raise InvalidInputError("file too short for a NIfTI header", where=where, hint="re-export the image")
    for order in ("<", ">"):
        sizeof = int.from_bytes(raw[:4], "little" if order == "<" else "big")
        if sizeof == 348:
            return nib.nifti1.header_dtype.newbyteorder(order)
        if sizeof == 540:
            return nib.nifti2.header_dtype.newbyteorder(order)
    raise InvalidInputError("not a NIfTI file (sizeof_hdr is neither 348 nor 540)", where=where,
                            hint="only NIfTI-1/2 images are cleaned; remove other files or convert them")


def _read_field(raw: bytearray, dtype: Any, name: str) -> float:
    import numpy as np

    field_dtype, offset = dtype.fields[name][:2]
    return float(np.frombuffer(bytes(raw[offset:offset + field_dtype.itemsize]), dtype=field_dtype)[0])


def _count_extensions(raw: bytearray, start: int, end: int, byteorder: str) -> int:
    order = "big" if byteorder == ">" else "little"
    pos, count = start + 4, 0
    while pos + 8 <= end:
        esize = int.from_bytes(raw[pos:pos + 4], order)
        if esize < 8 or pos + esize > end:
            break
        count += 1
        pos += esize
    return max(count, 1)


__all__ = ["clean_nifti_bytes"]
