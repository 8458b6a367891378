"""Downsampled overviews and single full-resolution slices of large case images for the workspace's first
view (001 §10.2.1).

A 512×512×200 CT is 100 MB: the workspace shows a block-averaged copy of at most
:data:`OVERVIEW_VOXELS` voxels (1 MB for int16) in the axial, coronal and sagittal views at once (the 3-D
render on demand) while the full-resolution image downloads, and keeps it beside the one-slice display
of large volumes. Block factors are whole numbers per axis, grown along the axis with the most voxels per
block step; the voxel type is kept.

:func:`axial_slice` cuts one axial slice out of a stored (zlib-compressed) ``.npy`` volume, inflating
the stream only as far as that slice: the workspace draws it at full resolution before the volume has
arrived.

Example
-------
>>> import numpy as np
>>> arr = np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8)
>>> small, factors = overview(arr, max_voxels=32)
>>> small.shape, factors, small.dtype
((2, 4, 4), (2, 2, 2), dtype('int16'))
>>> int(small[0, 0, 0]) == int(np.rint(arr[:2, :2, :2].mean()))
True
>>> import io, zlib
>>> buf = io.BytesIO(); np.save(buf, arr)
>>> one = np.load(io.BytesIO(axial_slice(zlib.compress(buf.getvalue()), 3)))
>>> one.shape, bool((one[0] == arr[3]).all())
((1, 8, 8), True)
"""

from __future__ import annotations

import io
import zlib
from typing import Any

import numpy as np
from isal import isal_zlib
from numpy.lib import format as npy_format
from numpy.typing import NDArray

from aimd.core.errors import IntegrityError, InvalidInputError

__all__ = ["OVERVIEW_VOXELS", "axial_slice", "overview"]

_CHUNK = 1 << 20  # compressed bytes inflated per step

OVERVIEW_VOXELS = 512 * 1024
"""Most voxels an overview holds."""


def overview(arr: NDArray[Any], *, max_voxels: int = OVERVIEW_VOXELS) -> tuple[NDArray[Any], tuple[int, int, int]]:
    """Block means of ``arr`` (z, y, x) with at most ``max_voxels`` voxels, and the block factors."""
    factors = [1, 1, 1]

    def size() -> int:
        return int(np.prod([n // f for n, f in zip(arr.shape, factors, strict=True)]))

    while size() > max_voxels:
        axis = int(np.argmax([n / f for n, f in zip(arr.shape, factors, strict=True)]))
        factors[axis] += 1
    fz, fy, fx = factors
    nz, ny, nx = (n // f for n, f in zip(arr.shape, factors, strict=True))
    blocks = arr[: nz * fz, : ny * fy, : nx * fx].reshape(nz, fz, ny, fy, nx, fx)
    mean = blocks.mean(axis=(1, 3, 5), dtype=np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        mean = np.rint(mean)
    return np.ascontiguousarray(mean.astype(arr.dtype)), (fz, fy, fx)


def axial_slice(stream: bytes, z: int) -> bytes:
    """Axial slice ``z`` of the zlib-compressed C-order ``.npy`` volume ``stream`` (z, y, x), as ``.npy``
    of shape (1, y, x) and the volume's voxel type; only the stream's part up to that slice is inflated.

    A slice outside the volume is an :class:`InvalidInputError`; a stream that ends early or is not a
    3-D ``.npy`` an :class:`IntegrityError`."""
    inflate = isal_zlib.decompressobj()
    out = bytearray()
    at = 0
    header: tuple[int, tuple[int, ...], np.dtype[Any]] | None = None
    end = None
    try:
        while end is None or len(out) < end:
            if at >= len(stream):
                break
            out += inflate.decompress(stream[at : at + _CHUNK])
            at += _CHUNK
            if header is None and len(out) >= 16:
                header = _npy_header(bytes(out[:_CHUNK]))
                if header is not None:
                    offset, shape, dtype = header
                    if z >= shape[0]:
                        raise InvalidInputError(
                            f"slice z={z} is outside the image's {shape[0]} slices",
                            where="z",
                            hint=f"ask for a slice 0 ≤ z < {shape[0]}",
                        )
                    plane = shape[1] * shape[2] * dtype.itemsize
                    end = offset + (z + 1) * plane
    except (zlib.error, isal_zlib.error) as err:
        raise IntegrityError(f"the stored image cannot be inflated ({err})", hint="restore the blob store") from None
    if header is None or end is None or len(out) < end:
        raise IntegrityError("the stored image ends before the slice asked for", hint="restore the blob store")
    offset, shape, dtype = header
    plane = shape[1] * shape[2] * dtype.itemsize
    one = np.frombuffer(bytes(out[end - plane : end]), dtype=dtype).reshape(1, shape[1], shape[2])
    buf = io.BytesIO()
    np.save(buf, one, allow_pickle=False)
    return buf.getvalue()


def _npy_header(head: bytes) -> tuple[int, tuple[int, ...], np.dtype[Any]] | None:
    """(data offset, shape, dtype) of a C-order 3-D ``.npy`` whose first bytes are ``head``, or None when
    ``head`` does not hold the whole header yet."""
    fp = io.BytesIO(head)
    try:
        major, _ = npy_format.read_magic(fp)
    except ValueError as err:
        raise IntegrityError(f"the stored image is not .npy ({err})", hint="restore the blob store") from None
    size = 2 if major == 1 else 4
    if len(head) < 8 + size:
        return None
    length = int.from_bytes(head[8 : 8 + size], "little")
    if len(head) < 8 + size + length:
        return None
    fp.seek(0)
    npy_format.read_magic(fp)
    read = npy_format.read_array_header_1_0 if major == 1 else npy_format.read_array_header_2_0
    shape, fortran, dtype = read(fp)
    if fortran or len(shape) != 3:
        raise IntegrityError(f"the stored image is not a C-order 3-D array ({shape})", hint="restore the blob store")
    return fp.tell(), tuple(shape), dtype
