"""Deterministic file encoders for phantom outputs: gzipped NIfTI, JSON and text.

Same content → same bytes: the gzip header carries no time stamp or file name, JSON keys are
sorted. NIfTI stores the LPS geometry of a :class:`Volume` as a RAS affine (qform and sform,
code 1 "scanner"), converting only at this boundary (DESIGN: Volume is LPS).

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.zeros((2, 3, 4), np.uint8), spacing=(0.5, 0.5, 2.0))
>>> nifti_gz_bytes(vol) == nifti_gz_bytes(vol)
True
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from aimd.imaging.volume import Volume

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ras_affine(volume: Volume) -> NDArray[np.float64]:
    """The 4×4 NIfTI (RAS) affine of ``volume``'s LPS geometry."""
    return LPS_TO_RAS @ volume.affine


def nifti_gz_bytes(volume: Volume, description: str = "aimd phantom") -> bytes:
    """``volume`` as .nii.gz bytes (data in the volume's dtype, no scaling)."""
    affine = ras_affine(volume)
    data = np.asarray(volume.array).transpose(2, 1, 0)  # (z, y, x) -> NIfTI (i, j, k) = (x, y, z)
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm")
    header["descrip"] = description.encode("ascii")[:79]
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    return gzip.compress(image.to_bytes(), compresslevel=1, mtime=0)


def json_bytes(obj: Any) -> bytes:
    """UTF-8 JSON, keys sorted, non-ASCII kept, trailing newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def write_bytes(path: Path, data: bytes) -> None:
    """Plain write inside a folder that is itself renamed into place when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


__all__ = ["LPS_TO_RAS", "json_bytes", "nifti_gz_bytes", "ras_affine", "write_bytes"]
