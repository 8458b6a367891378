"""Masks uploaded as NIfTI files (``.nii`` / ``.nii.gz``) on the case's image grid (001 §10.2.2, §6.4.1).

A label mask drawn in another tool usually travels as NIfTI. It is accepted on a whole-mask save
(``Content-Type: application/x-nifti``, or recognised by its header or gzip wrapper) when its grid is the
case image's: the same voxel shape and an affine within tolerance (spacing and origin within
:data:`TOLERANCE_MM`, direction cosines within :data:`TOLERANCE_DIRECTION`). A mismatch is a 400 naming
what differs and how to fix it. The voxels become the ``.npy`` (z, y, x) that the ordinary mask checks
then validate (integer labels of the project's map).

Example
-------
>>> import gzip, tempfile
>>> from pathlib import Path
>>> import numpy as np
>>> from aimd.imaging.nifti_io import write_nifti
>>> from aimd.imaging.volume import Volume
>>> labels = np.zeros((4, 6, 8), np.uint8); labels[1, 2:4, 2:5] = 1
>>> path = Path(tempfile.mkdtemp()) / "mask.nii.gz"
>>> write_nifti(Volume(labels, spacing=(0.7, 0.7, 2.0)), path)
>>> image = {"shape": [4, 6, 8], "spacing": [0.7, 0.7, 2.0], "origin": [0.0, 0.0, 0.0],
...          "direction": np.eye(3).tolist()}
>>> npy = nifti_mask_npy(path.read_bytes(), image, limit=10**6)
>>> int(np.load(__import__("io").BytesIO(npy)).sum())
6
>>> try:
...     nifti_mask_npy(path.read_bytes(), {**image, "spacing": [0.7, 0.7, 2.5]}, limit=10**6)
... except MaskError as err:
...     print(err.message)
the NIfTI mask's spacing [0.7, 0.7, 2.0] differs from the case image's [0.7, 0.7, 2.5] (x, y, z mm)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.hashing import sha256_bytes
from aimd.platform.masks import MaskError, decode_body, to_npy

__all__ = ["NIFTI_TYPES", "TOLERANCE_DIRECTION", "TOLERANCE_MM", "is_nifti_upload", "nifti_mask_npy"]

NIFTI_TYPES = ("application/x-nifti", "application/nifti", "application/x-nifti-gz")
TOLERANCE_MM = 1e-3  # spacing and origin: NIfTI keeps the affine in float32
TOLERANCE_DIRECTION = 1e-4
_FIX = "resample the mask onto the case image (same shape, spacing, origin and direction) or send it as .npy (z, y, x)"


def _has_nifti_header(raw: bytes) -> bool:
    if len(raw) < 348:
        return False
    size = {int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")}
    return (348 in size and raw[344:347] in (b"n+1", b"ni1")) or (540 in size and raw[4:7] in (b"n+2", b"ni2"))


def is_nifti_upload(raw: bytes, content_type: str | None) -> bool:
    """True when a whole-mask upload (its ``Content-Encoding`` already removed) is to be read as NIfTI: the
    content type says so, or the bytes are a NIfTI header or a gzip file (``.nii.gz``) rather than ``.npy``."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in NIFTI_TYPES:
        return True
    return not raw.startswith(b"\x93NUMPY") and (raw[:2] == b"\x1f\x8b" or _has_nifti_header(raw))


def nifti_mask_npy(raw: bytes, image: dict[str, Any], *, limit: int, declared_sha256: str | None = None) -> bytes:
    """The ``.npy`` (z, y, x) of a NIfTI mask upload whose grid matches the case ``image`` record.

    ``raw`` is the ``.nii`` or ``.nii.gz`` file (gunzipped here to at most ``limit`` bytes);
    ``declared_sha256`` (``X-Content-SHA256``) is checked against the file's bytes as sent."""
    if declared_sha256 is not None and sha256_bytes(raw) != declared_sha256.strip().lower():
        raise MaskError(
            f"the NIfTI upload's SHA-256 {sha256_bytes(raw)} differs from the declared X-Content-SHA256",
            hint="the file changed on the way: send it again (the digest is of the file as sent)",
            status=400,
        )
    data = decode_body(raw, "gzip", limit=limit) if raw[:2] == b"\x1f\x8b" else raw
    if not _has_nifti_header(data):
        raise MaskError(
            "the mask upload is not a NIfTI file (no NIfTI-1/2 header)",
            hint="send a .nii or .nii.gz file, or a .npy with Content-Type application/octet-stream",
            status=400,
        )
    from aimd.imaging.nifti_io import read_nifti

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mask.nii"
        path.write_bytes(data)
        try:
            volume = read_nifti(path)
            arr = np.asarray(volume.array)
        except Exception as err:  # nibabel raises many kinds for a damaged file
            raise MaskError(
                f"the NIfTI mask cannot be read ({err})", hint="send the whole .nii or .nii.gz file", status=400
            ) from None
    _check_grid(volume, arr.shape, image)
    if arr.dtype.kind == "f":
        if not np.array_equal(arr, np.round(arr)):
            raise MaskError("the NIfTI mask holds non-integer values", hint="save the mask with integer label values")
        arr = arr.astype(np.int32)
    return to_npy(arr)


def _check_grid(volume: Any, shape: tuple[int, ...], image: dict[str, Any]) -> None:
    """Refuse a NIfTI mask off the case image's grid, naming the first thing that differs."""
    if list(shape) != list(image["shape"]):
        raise MaskError(
            f"the NIfTI mask's grid {list(shape)} differs from the case image's {list(image['shape'])} (z, y, x)",
            hint=_FIX,
            status=400,
        )
    checks = (
        ("spacing", volume.spacing, image["spacing"], TOLERANCE_MM, "(x, y, z mm)"),
        ("origin", volume.origin, image["origin"], TOLERANCE_MM, "(LPS mm)"),
        ("direction", np.asarray(volume.direction), np.asarray(image["direction"]), TOLERANCE_DIRECTION, "(cosines)"),
    )
    for name, got, want, tolerance, unit in checks:
        got_arr, want_arr = np.asarray(got, float), np.asarray(want, float)
        if got_arr.shape != want_arr.shape or not np.allclose(got_arr, want_arr, rtol=0, atol=tolerance):
            shown = [round(float(v), 4) for v in got_arr.ravel()]
            expected = [round(float(v), 4) for v in want_arr.ravel()]
            raise MaskError(
                f"the NIfTI mask's {name} {shown} differs from the case image's {expected} {unit}",
                hint=_FIX,
                status=400,
            )
