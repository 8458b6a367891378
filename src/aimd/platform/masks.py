"""Label masks on the wire and their differences (001 §10.2.2, §9.2).

Masks travel as NumPy ``.npy`` arrays in ``(z, y, x)`` order on the case's image grid, with integer
voxel values from the project's label map (0 = background), as is or compressed (``Content-Encoding:
gzip``, ``deflate`` or ``zstd``: a 52 MB mask of mostly background travels as a few hundred kB).
:func:`read_mask_upload` refuses a truncated upload, a wrong shape, a non-integer dtype or a value
outside the label map, naming the problem; nothing is stored then. :func:`mask_diff` compares two
masks label by label: Dice, HD95, volume change and the slices that changed.

Example
-------
>>> import numpy as np
>>> a = np.zeros((4, 8, 8), np.uint8); a[1:3, 2:6, 2:6] = 1
>>> b = a.copy(); b[2] = 0
>>> d = mask_diff(a, b, spacing_zyx=(2.0, 1.0, 1.0))
>>> d["labels"]["1"]["changed_slices"], round(d["labels"]["1"]["dice"], 3)
([2], 0.667)
>>> parse_mask(to_npy(a), shape=(4, 8, 8), allowed={1}).shape
(4, 8, 8)
>>> up = read_mask_upload(zlib.compress(to_npy(a)), shape=(4, 8, 8), allowed={1}, encoding="deflate")
>>> up.npy == to_npy(a), up.max_label
(True, 1)
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_bytes
from aimd.metrics import segmentation_metrics

__all__ = ["MaskError", "MaskUpload", "decode_body", "mask_diff", "parse_mask", "read_mask_upload", "to_npy"]

_DTYPES = (np.uint8, np.uint16, np.int8, np.int16, np.int32, np.uint32, np.bool_)


class MaskError(InvalidInputError):
    """An uploaded mask cannot be used as given (HTTP 400 for an unreadable body, 422 otherwise)."""

    def __init__(self, message: str, *, hint: str, status: int = 422) -> None:
        super().__init__(message, where="mask", hint=hint)
        self.status = status


def to_npy(array: NDArray[Any]) -> bytes:
    """``array`` as ``.npy`` bytes."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


@dataclass(frozen=True)
class MaskUpload:
    """A validated mask upload: the canonical ``.npy`` bytes to store and their SHA-256 (empty when not
    computed)."""

    npy: bytes
    sha256: str
    shape: tuple[int, ...]
    max_label: int


def parse_mask(body: bytes, *, shape: Iterable[int], allowed: set[int]) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """Read and validate an uploaded ``.npy`` label mask; returns it as uint8 (or uint16)."""
    upload = read_mask_upload(body, shape=shape, allowed=allowed)
    return np.load(io.BytesIO(upload.npy), allow_pickle=False)


def read_mask_upload(
    body: bytes,
    *,
    shape: Iterable[int],
    allowed: set[int],
    encoding: str | None = None,
    declared_sha256: str | None = None,
    digest: bool = True,
) -> MaskUpload:
    """Validate an uploaded ``.npy`` mask sent as is or with ``Content-Encoding`` ``gzip`` / ``deflate``.

    The body is inflated at most to the size the image grid allows, read without a copy, its labels checked
    against ``allowed`` by the maximum (and a lookup table only when the label map has gaps), and stored as
    uint8 (uint16 above 255); any other ``.npy`` layout (Fortran order, another dtype) is rewritten
    canonical (C order, that dtype, ``numpy.save`` header). With ``declared_sha256`` (the client's
    ``X-Content-SHA256`` of the ``.npy`` it sent) an upload changed on the way is refused. With
    ``digest`` False (and nothing declared) the SHA-256 of the whole ``.npy`` is not computed (``sha256``
    is empty): a store that names the mask by its slabs needs no second hash of every byte.
    """
    expected = tuple(int(s) for s in shape)
    if not body:
        raise MaskError("the mask upload is empty", hint="send the mask as a .npy array (numpy.save)", status=400)
    limit = 65536 + 8 * int(np.prod(expected))
    raw = decode_body(body, encoding, limit=limit)
    arr, header_len, fortran = _npy_view(raw, expected)
    top = _check_labels(arr, allowed)
    dtype = np.dtype(np.uint16 if top > 255 else np.uint8)
    canonical = arr.dtype == dtype and not fortran and raw[:header_len] == _npy_header(dtype, expected)
    sha = sha256_bytes(raw) if digest or declared_sha256 is not None else ""
    if declared_sha256 is not None and declared_sha256.strip().lower() != sha:
        raise MaskError(
            f"the mask upload's SHA-256 {sha} differs from the declared X-Content-SHA256 {declared_sha256.strip()!r}",
            hint="the body changed on the way: send it again (the digest is of the .npy bytes before compression)",
            status=400,
        )
    if not canonical:
        raw = to_npy(arr.astype(dtype))
        sha = sha256_bytes(raw) if sha else ""
    return MaskUpload(npy=raw, sha256=sha, shape=expected, max_label=top)


def decode_body(body: bytes, encoding: str | None, *, limit: int) -> bytes:
    """``body`` without its ``Content-Encoding`` (identity, gzip, deflate or zstd), inflated to at most
    ``limit`` bytes: a broken or truncated stream or data after it is a 400, more than ``limit`` a 413,
    another encoding a 415."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        return _inflate(body, 31, limit)
    if coding == "deflate":
        return _inflate(body, 15, limit)
    if coding == "zstd":
        return _unzstd(body, limit)
    raise MaskError(
        f"Content-Encoding {encoding!r} is not accepted for masks",
        hint="send the .npy as is, or compressed with gzip, deflate (zlib) or zstd",
        status=415,
    )


def _inflate(body: bytes, wbits: int, limit: int) -> bytes:
    inflater = isal_zlib.decompressobj(wbits)  # ISA-L: the same streams as zlib, inflated twice as fast
    try:
        raw = inflater.decompress(body, limit)
    except (zlib.error, isal_zlib.error) as err:
        raise MaskError(
            f"the compressed mask upload cannot be inflated ({err})",
            hint="compress the whole .npy with the Content-Encoding you name (gzip or deflate)",
            status=400,
        ) from None
    return _whole_stream(raw, limit, done=inflater.eof, rest=inflater.unused_data)


_ZSTD_STEP = 256  # compressed bytes fed at a time: one zstd byte inflates to at most ~32 kB (an RLE block)


def _unzstd(body: bytes, limit: int) -> bytes:
    import zstandard

    inflater = zstandard.ZstdDecompressor().decompressobj()
    parts, size = [], 0
    try:
        for start in range(0, len(body), _ZSTD_STEP):
            part = inflater.decompress(body[start : start + _ZSTD_STEP])
            parts.append(part)
            size += len(part)
            if size > limit or inflater.eof:
                break
    except zstandard.ZstdError as err:
        raise MaskError(
            f"the zstd mask upload cannot be decompressed ({err})",
            hint="compress the whole .npy as one zstd frame",
            status=400,
        ) from None
    raw = b"".join(parts)
    return _whole_stream(raw, limit, done=inflater.eof and size <= limit, rest=inflater.unused_data)


def _whole_stream(raw: bytes, limit: int, *, done: bool, rest: bytes) -> bytes:
    """``raw`` when the stream ended within ``limit`` bytes with nothing after it; the refusal otherwise."""
    if len(raw) >= limit and not done:
        raise MaskError(
            f"the mask upload inflates beyond {limit} bytes, more than a mask on the image grid can hold",
            hint="send one mask on the case's image grid",
            status=413,
        )
    if not done:
        raise MaskError(
            "the compressed mask upload is truncated (the stream ends early)",
            hint="send the whole compressed file",
            status=400,
        )
    if rest:
        raise MaskError(
            f"{len(rest)} bytes follow the compressed mask",
            hint="send one compressed stream (one gzip member, one zstd frame)",
            status=400,
        )
    return raw


def _npy_view(raw: bytes, expected: tuple[int, ...]) -> tuple[NDArray[Any], int, bool]:
    """The array in ``raw`` without copying it, the header length and whether it is in Fortran order."""
    head = io.BytesIO(raw[: 65536 + 16])
    try:
        version = np.lib.format.read_magic(head)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(head)
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise MaskError(
            f"the mask upload is truncated or not a .npy array ({err})",
            hint="send the whole file written by numpy.save (one array, not .npz)",
            status=400,
        ) from None
    if dtype.hasobject or dtype.type not in _DTYPES:
        raise MaskError(f"mask dtype {dtype} is not an integer label type", hint="use uint8 (or uint16) label values")
    offset = head.tell()
    count = int(np.prod(shape))
    size = len(raw) - offset
    if size < count * dtype.itemsize:
        raise MaskError(
            f"the mask upload is truncated: {size} of {count * dtype.itemsize} data bytes",
            hint="send the whole file written by numpy.save",
            status=400,
        )
    if size > count * dtype.itemsize:
        raise MaskError(
            f"{size - count * dtype.itemsize} bytes follow the .npy array",
            hint="send one .npy array",
            status=400,
        )
    if tuple(shape) != expected:
        raise MaskError(
            f"mask shape {list(shape)} differs from the image grid {list(expected)} (z, y, x)",
            hint="draw the mask on the case's image grid",
        )
    arr = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if fortran else "C"), offset, bool(fortran)


def _check_labels(arr: NDArray[Any], allowed: set[int]) -> int:
    """The largest label; a value outside ``allowed`` (0 is background) is refused, named."""
    if arr.size == 0:
        return 0
    low, high = int(arr.min()), int(arr.max())
    if low >= 0 and all(v in allowed for v in range(1, high + 1)):
        return high  # the common case: labels 1..n all in the map, decided by the maximum alone
    if low >= 0 and high < 65536:
        outside_lut = np.ones(high + 1, bool)
        outside_lut[0] = False
        outside_lut[[v for v in allowed if 0 <= v <= high]] = False
        hit = outside_lut[arr]
        outside = sorted(int(v) for v in np.unique(arr[hit])) if hit.any() else []
    else:
        outside = sorted({int(v) for v in np.unique(arr)} - set(allowed) - {0})
    if outside:
        raise MaskError(
            f"mask values {outside[:10]} are not in the project's label map {sorted(allowed)}",
            hint="use only the label values of the project's taxonomy",
        )
    return high


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def mask_diff(
    a: NDArray[Any], b: NDArray[Any], *, spacing_zyx: Iterable[float], label_names: dict[int, str] | None = None
) -> dict[str, Any]:
    """Per-label Dice, HD95 (mm), volume change (mL) and changed slices from mask ``a`` to mask ``b``."""
    spacing = tuple(float(s) for s in spacing_zyx)
    if a.shape != b.shape:
        raise InvalidInputError(
            f"masks differ in shape {a.shape} vs {b.shape}", where="diff", hint="compare versions of one case"
        )
    out: dict[str, Any] = {"labels": {}, "changed_voxels": int(np.count_nonzero(a != b))}
    metrics = segmentation_metrics(a, b, spacing=spacing)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    for label, m in metrics.items():
        in_a, in_b = a == label, b == label
        changed = np.flatnonzero((in_a != in_b).reshape(a.shape[0], -1).any(axis=1)).tolist()
        va, vb = float(in_a.sum()) * voxel_ml, float(in_b.sum()) * voxel_ml
        out["labels"][str(label)] = {
            "label_code": (label_names or {}).get(label),
            "dice": m.dice,
            "hd95_mm": None if not np.isfinite(m.hd95) else float(m.hd95),
            "volume_a_ml": va,
            "volume_b_ml": vb,
            "volume_change_ml": vb - va,
            "changed_slices": changed,
            "note": m.empty,
        }
    return out
