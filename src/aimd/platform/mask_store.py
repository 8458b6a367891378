"""Mask versions as manifests of content-addressed slabs (001 §10.2.2, §10.2.3).

A stored mask version is a small manifest blob: the ``.npy`` header, the grid, and for each slab of
:data:`SLAB_SLICES` axial slices the SHA-256 and Adler-32 of its bytes. Each slab is kept once, as a
raw-deflate segment of its own (no back-references to other slabs, ending byte-aligned with a full
flush), named by the SHA-256 of its bytes: versions share every slab they did not change, and a brush
stroke reads, patches, hashes, compresses and writes only the slabs it touches. The version's name is
the SHA-256 of its manifest, which names every byte of the ``.npy`` through the slab hashes.

A client that accepts ``deflate`` gets the version as one zlib stream built by concatenating a zlib
header, the stored segments and the Adler-32 of the whole, combined from the slabs' own
(:func:`adler32_combine`), without inflating anything. :func:`mask_npy` gives the exact ``.npy``
bytes and :func:`load_mask` the array, for new versions and for versions stored whole before slabs
(one ``.npy`` blob; read as they are).

Example
-------
>>> import tempfile, zlib
>>> import numpy as np
>>> from aimd.platform.masks import to_npy
>>> store = MaskStore(tempfile.mkdtemp())
>>> mask = np.zeros((20, 16, 16), np.uint8); mask[3, 4:9, 4:9] = 1
>>> v1 = store_npy(store, to_npy(mask))
>>> mask_npy(store, v1) == to_npy(mask), zlib.decompress(deflate_stream(store, v1)) == to_npy(mask)
(True, True)
>>> v2 = patch_version(store, v1, mask.shape, np.full((1, 2, 2), 1, np.uint8), (17, 0, 0))
>>> changed = set(manifest_of(store, v2).slabs) - set(manifest_of(store, v1).slabs)
>>> len(changed), int(load_mask(store, v2).sum())
(1, 29)
>>> adler32_combine(zlib.adler32(b"ab"), zlib.adler32(b"cde"), 3) == zlib.adler32(b"abcde")
True
"""

from __future__ import annotations

import io
import json
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from isal import isal_zlib
from numpy.typing import NDArray

from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_bytes
from aimd.store import BlobStore
from aimd.store.blobs import read_checked, read_stored, unlink_if_stale, write_once

__all__ = [
    "SLAB_SLICES",
    "Manifest",
    "MaskStore",
    "adler32_combine",
    "deflate_stream",
    "load_mask",
    "manifest_of",
    "manifest_stream",
    "mask_npy",
    "missing_parts",
    "patch_version",
    "store_npy",
]

SLAB_SLICES = 4  # axial slices per slab (benchmarks/platform_load.py --slabs measures 1-16)
_MAGIC = b'{"aimd_mask_manifest":'
_BASE = 65521  # the Adler-32 modulus
_FINAL = b"\x03\x00"  # an empty final fixed-Huffman deflate block: ends the concatenated segments


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """The Adler-32 of ``A + B`` from the Adler-32 of ``A``, of ``B`` and the length of ``B`` (RFC 1950)."""
    low1, high1 = adler1 & 0xFFFF, adler1 >> 16
    low2, high2 = adler2 & 0xFFFF, adler2 >> 16
    low = (low1 + low2 - 1) % _BASE
    high = (high1 + high2 + (len2 % _BASE) * (low1 - 1)) % _BASE
    return (high << 16) | low


def _segment(data: bytes | memoryview) -> bytes:
    """``data`` as raw deflate of its own, ending byte-aligned (full flush): segments concatenate."""
    packer = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(isal_zlib.Z_FULL_FLUSH)


class MaskStore(BlobStore):
    """The platform's blob store: whole blobs (``.z``, zlib) plus mask slabs (``.d``, raw-deflate
    segments named by the SHA-256 of their inflated bytes). Collection follows manifests to their slabs;
    :meth:`verify` and :meth:`files` (what a backup copies) cover both kinds."""

    segment_suffix = ".d"

    def segment_path(self, sha: str) -> Path:
        """Where slab ``sha`` lives (whether or not it exists)."""
        return self.path(sha).with_suffix(self.segment_suffix)

    def put_segment(self, sha: str, data: bytes | memoryview) -> None:
        """Store slab ``data`` whose SHA-256 the caller computed as ``sha`` (once; a re-use touches it)."""
        write_once(self.segment_path(sha), lambda: _segment(data))

    def get_segment_compressed(self, sha: str) -> bytes:
        """The stored raw-deflate segment of slab ``sha``."""
        return read_stored(self.segment_path(sha), sha, what="mask slab")

    def get_segment(self, sha: str) -> bytes:
        """The bytes of slab ``sha``, checked against its name."""
        return read_checked(self.segment_path(sha), sha, wbits=-15, what="mask slab")

    def segments(self) -> Iterator[str]:
        """Names of the stored slabs."""
        for path in sorted(self.root.glob(f"??/*{self.segment_suffix}")):
            yield path.name[: -len(self.segment_suffix)]

    def files(self) -> Iterator[Path]:
        """Every stored file, blobs and slabs (what a backup copies and hashes)."""
        yield from (self.path(sha) for sha in self)
        yield from (self.segment_path(sha) for sha in self.segments())

    def verify(self) -> list[str]:
        """Names of damaged blobs and slabs (``<sha>.d`` for a slab); empty when all hold."""
        bad = super().verify()
        for sha in self.segments():
            try:
                self.get_segment(sha)
            except IntegrityError:
                bad.append(sha + self.segment_suffix)
        return bad

    def collect(
        self, referenced: set[str], *, candidates: set[str] | None = None, grace_seconds: float = 600.0
    ) -> list[str]:
        """As :meth:`BlobStore.collect`; slabs go when no referenced manifest names them (of the slabs of
        the ``candidates`` manifests, or all slabs when ``candidates`` is None)."""
        kept_slabs = {s for sha in referenced if sha in self for s in _slabs_or_none(self, sha)}
        pool = set(self.segments()) if candidates is None else {s for c in candidates for s in _slabs_or_none(self, c)}
        removed = super().collect(referenced, candidates=candidates, grace_seconds=grace_seconds)
        cutoff = time.time() - grace_seconds
        stale = [sha for sha in sorted(pool - kept_slabs) if unlink_if_stale(self.segment_path(sha), cutoff)]
        return removed + [sha + self.segment_suffix for sha in stale]


def _slabs_or_none(store: BlobStore, sha: str) -> tuple[str, ...]:
    try:
        found = manifest_of(store, sha)
    except (IntegrityError, InvalidInputError):
        return ()
    return () if found is None else tuple(found.slabs)


@dataclass(frozen=True)
class Manifest:
    """One mask version: the ``.npy`` header, grid, bytes per voxel, slices per slab, and each slab's
    SHA-256 and Adler-32 (in slice order)."""

    header: bytes
    shape: tuple[int, int, int]
    itemsize: int
    slab_slices: int
    slabs: tuple[str, ...]
    adlers: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype[Any]:
        return _npy_header_fields(self.header)[2]

    @property
    def slice_bytes(self) -> int:
        return self.shape[1] * self.shape[2] * self.itemsize

    def slab_length(self, k: int) -> int:
        """Bytes of slab ``k`` (the last may hold fewer slices)."""
        return (min(self.shape[0], (k + 1) * self.slab_slices) - k * self.slab_slices) * self.slice_bytes

    def to_bytes(self) -> bytes:
        body = {
            "header": self.header.decode("latin-1"),
            "shape": list(self.shape),
            "itemsize": self.itemsize,
            "slab_slices": self.slab_slices,
            "slabs": [[s, a] for s, a in zip(self.slabs, self.adlers, strict=True)],
        }
        return _MAGIC + json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"}"

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        body = json.loads(data[len(_MAGIC) : -1])
        slabs = body["slabs"]
        return cls(
            body["header"].encode("latin-1"),
            tuple(body["shape"]),
            int(body["itemsize"]),
            int(body["slab_slices"]),
            tuple(s for s, _ in slabs),
            tuple(int(a) for _, a in slabs),
        )


def manifest_of(store: BlobStore, sha: str) -> Manifest | None:
    """The manifest of version ``sha``; None for a version stored whole (one ``.npy`` blob)."""
    target = store.path(sha)
    try:
        with target.open("rb") as handle:
            start = handle.read(256)
    except FileNotFoundError:
        raise IntegrityError(
            f"blob {sha} is missing", where=str(target), hint="restore the blob store from a backup"
        ) from None
    try:
        head = isal_zlib.decompressobj().decompress(start, len(_MAGIC))
    except (zlib.error, isal_zlib.error):
        head = b""  # damaged: get() below names the problem when it is a manifest at all
    if head != _MAGIC:
        return None
    return Manifest.from_bytes(store.get(sha))


def _put_manifest(store: BlobStore, manifest: Manifest) -> str:
    return store.put(manifest.to_bytes())


def _store_slab(store: MaskStore, data: bytes | memoryview) -> tuple[str, int]:
    sha = sha256_bytes(data)
    store.put_segment(sha, data)
    return sha, isal_zlib.adler32(data)


def _npy_header_fields(npy: bytes) -> tuple[tuple[int, ...], bool, np.dtype[Any], int]:
    """Shape, Fortran order, dtype and data offset of a ``.npy`` header."""
    head = io.BytesIO(npy[:65552])
    version = np.lib.format.read_magic(head)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = reader(head)
    return tuple(int(s) for s in shape), bool(fortran), dtype, head.tell()


def store_npy(store: MaskStore, npy: bytes, *, slab_slices: int = SLAB_SLICES) -> str:
    """Store a canonical 3-D ``.npy`` (C order, as :func:`aimd.platform.masks.to_npy` writes) as slabs
    and a manifest; returns the version's name. Slabs already stored are not compressed again."""
    shape, fortran, dtype, offset = _npy_header_fields(npy)
    if fortran or len(shape) != 3:
        raise InvalidInputError(
            f"a mask version is a 3-D C-order array, not shape {list(shape)} (Fortran order {fortran})",
            where="mask",
            hint="write the mask with numpy.save of a (z, y, x) array",
        )
    view = memoryview(npy)[offset:]
    step = slab_slices * shape[1] * shape[2] * dtype.itemsize
    zeros: set[int] = set()
    pairs = []
    for i in range(0, len(view), step):
        part = view[i : i + step]
        if np.frombuffer(part, np.uint8).any():
            pairs.append(_store_slab(store, part))
        else:  # all background, most slabs of a mask: named without hashing, stored (touched) once per save
            pairs.append(_zero_slab(store, len(part), touch=len(part) not in zeros))
            zeros.add(len(part))
    manifest = Manifest(
        npy[:offset],
        shape,  # type: ignore[arg-type]
        dtype.itemsize,
        slab_slices,
        tuple(p[0] for p in pairs),
        tuple(p[1] for p in pairs),
    )
    return _put_manifest(store, manifest)


def missing_parts(store: MaskStore, versions: Iterable[str]) -> dict[str, list[str]]:
    """For each of ``versions`` (blob names) whose blob or any of whose slabs is not stored, what is missing
    (``<sha>`` for the blob, ``<sha>.d`` for a slab); empty when every version can be read."""
    out: dict[str, list[str]] = {}
    for sha in sorted(versions):
        if sha not in store:
            out[sha] = [sha]
            continue
        try:
            manifest = manifest_of(store, sha)
        except IntegrityError:
            out[sha] = [sha]
            continue
        slabs = manifest.slabs if manifest is not None else ()
        gone = {slab + store.segment_suffix for slab in slabs if not store.segment_path(slab).exists()}
        if gone:
            out[sha] = sorted(gone)
    return out


def _slab_data(store: MaskStore, manifest: Manifest) -> Iterator[bytes]:
    for sha in manifest.slabs:
        yield store.get_segment(sha)


def mask_npy(store: MaskStore, sha: str, manifest: Manifest | None = None) -> bytes:
    """The exact ``.npy`` bytes of version ``sha`` (assembled from its slabs, or the whole blob); pass its
    ``manifest`` when already read."""
    manifest = manifest or manifest_of(store, sha)
    if manifest is None:
        return store.get(sha)
    return manifest.header + b"".join(_slab_data(store, manifest))


def load_mask(store: MaskStore, sha: str) -> NDArray[Any]:
    """Version ``sha`` as a writable array (the one place a stored mask becomes an ndarray)."""
    manifest = manifest_of(store, sha)
    if manifest is None:
        return np.load(io.BytesIO(store.get(sha)), allow_pickle=False)
    out = bytearray(manifest.header)
    for data in _slab_data(store, manifest):
        out += data
    return np.frombuffer(out, dtype=manifest.dtype, offset=len(manifest.header)).reshape(manifest.shape)


def deflate_stream(store: MaskStore, sha: str) -> bytes:
    """Version ``sha`` as one zlib stream of its ``.npy`` (HTTP ``Content-Encoding: deflate``): the stored
    segments concatenated between a zlib header and the combined Adler-32; nothing is inflated."""
    manifest = manifest_of(store, sha)
    return store.get_compressed(sha) if manifest is None else manifest_stream(store, manifest)


def manifest_stream(store: MaskStore, manifest: Manifest) -> bytes:
    """The zlib stream of a version's ``.npy`` from its manifest (see :func:`deflate_stream`)."""
    adler = isal_zlib.adler32(manifest.header)
    parts = [b"\x78\x01", _segment(manifest.header)]
    for k, (slab, slab_adler) in enumerate(zip(manifest.slabs, manifest.adlers, strict=True)):
        parts.append(store.get_segment_compressed(slab))
        adler = adler32_combine(adler, slab_adler, manifest.slab_length(k))
    parts += [_FINAL, adler.to_bytes(4, "big")]
    return b"".join(parts)


_ZERO_SLABS: dict[int, tuple[str, int]] = {}


def _zero_slab(store: MaskStore, length: int, *, touch: bool = True) -> tuple[str, int]:
    """The SHA-256 and Adler-32 of an all-zero slab of ``length`` bytes (computed once per process); with
    ``touch`` the slab is stored, or touched when it is."""
    if length not in _ZERO_SLABS:
        _ZERO_SLABS[length] = (sha256_bytes(bytes(length)), isal_zlib.adler32(bytes(length)))
    sha, adler = _ZERO_SLABS[length]
    if touch:
        store.put_segment(sha, bytes(length))
    return sha, adler


def empty_manifest(store: MaskStore, shape: Sequence[int], *, slab_slices: int = SLAB_SLICES) -> Manifest:
    """An all-background uint8 version on ``shape`` (the base of a first delta save); stores its slab."""
    from aimd.platform.masks import _npy_header

    grid = tuple(int(s) for s in shape)
    base = Manifest(_npy_header(np.dtype(np.uint8), grid), grid, 1, slab_slices, (), ())  # type: ignore[arg-type]
    count = -(-grid[0] // slab_slices)
    lengths = [base.slab_length(k) for k in range(count)]
    pairs = [_zero_slab(store, n, touch=n not in lengths[:k]) for k, n in enumerate(lengths)]
    return Manifest(base.header, base.shape, 1, slab_slices, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))


def patch_version(
    store: MaskStore, base_sha: str | None, shape: Sequence[int], patch: NDArray[Any], at: Sequence[int]
) -> str:
    """The version ``base_sha`` (an empty mask when None) with the validated ``patch`` box written at
    ``at`` (z, y, x); only the slabs the box touches are read and written. Returns the new version's name.

    A base stored whole is split into slabs first; a patch whose labels need a wider dtype than the base
    rewrites the whole mask in that dtype."""
    base = empty_manifest(store, shape) if base_sha is None else manifest_of(store, base_sha)
    if base is None or patch.dtype.itemsize > base.itemsize:
        full = load_mask(store, base_sha) if base_sha is not None else np.zeros(tuple(shape), np.uint8)
        full = full.astype(np.result_type(full.dtype, patch.dtype), copy=True)
        z, y, x = (int(v) for v in at)
        d, h, w = patch.shape
        full[z : z + d, y : y + h, x : x + w] = patch
        from aimd.platform.masks import to_npy

        return store_npy(store, to_npy(full))
    z, y, x = (int(v) for v in at)
    d, h, w = patch.shape
    slabs, adlers = list(base.slabs), list(base.adlers)
    per = base.slab_slices
    for k in range(z // per, (z + d - 1) // per + 1):
        first = k * per
        block = np.frombuffer(bytearray(store.get_segment(base.slabs[k])), dtype=base.dtype)
        block = block.reshape(-1, base.shape[1], base.shape[2])
        lo, hi = max(z, first), min(z + d, first + block.shape[0])
        block[lo - first : hi - first, y : y + h, x : x + w] = patch[lo - z : hi - z]
        slabs[k], adlers[k] = _store_slab(store, block.data)
    return _put_manifest(store, Manifest(base.header, base.shape, base.itemsize, per, tuple(slabs), tuple(adlers)))
