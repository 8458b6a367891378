"""Mask versions as manifests of content-addressed slabs: exact bytes back, shared slabs, a zlib stream
made of stored segments, versions stored whole before slabs still read, damage found (001 §10.2.2–§10.2.3)."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest

from aimd.core.errors import IntegrityError
from aimd.platform.mask_store import (
    MaskStore,
    adler32_combine,
    deflate_stream,
    load_mask,
    manifest_of,
    mask_npy,
    patch_version,
    store_npy,
)
from aimd.platform.masks import to_npy

SHAPE = (10, 24, 20)


def _mask(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros(SHAPE, np.uint8)
    m[2:7, 5:15, 4:12] = rng.integers(0, 3, (5, 10, 8))
    return m


@pytest.mark.parametrize("split", [0, 1, 7, 65520, 65521, 65522, 200_000])
def test_adler32_combine_equals_zlib_over_the_whole(split: int) -> None:
    data = np.random.default_rng(split).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    a, b = data[:split], data[split:]
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(data)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) != zlib.adler32(data[::-1])


def test_a_version_reads_back_byte_identical_in_every_form(tmp_path: Path) -> None:
    store = MaskStore(tmp_path)
    raw = to_npy(_mask())
    sha = store_npy(store, raw, slab_slices=3)  # 10 slices: slabs of 3, 3, 3 and 1
    assert len(manifest_of(store, sha).slabs) == 4
    assert mask_npy(store, sha) == raw
    assert zlib.decompress(deflate_stream(store, sha)) == raw  # stored segments + combined Adler-32
    got = load_mask(store, sha)
    assert np.array_equal(got, _mask()) and got.flags.writeable
    wide = np.zeros(SHAPE, np.uint16)
    wide[9, 23, 19] = 300
    assert mask_npy(store, store_npy(store, to_npy(wide))) == to_npy(wide)
    assert store_npy(store, raw, slab_slices=3) == sha  # the same content, the same name


def test_a_stroke_writes_only_the_slabs_it_touches(tmp_path: Path) -> None:
    store = MaskStore(tmp_path)
    base = _mask()
    v1 = store_npy(store, to_npy(base), slab_slices=4)
    files = set(store.files())
    box = np.full((2, 3, 3), 2, np.uint8)
    v2 = patch_version(store, v1, SHAPE, box, (3, 1, 1))  # slices 3-4: slabs 0 and 1
    expected = base.copy()
    expected[3:5, 1:4, 1:4] = 2
    assert mask_npy(store, v2) == to_npy(expected) and mask_npy(store, v1) == to_npy(base)
    old, new = manifest_of(store, v1), manifest_of(store, v2)
    assert [a == b for a, b in zip(old.slabs, new.slabs, strict=True)] == [False, False, True]
    assert len(set(store.files()) - files) == 3  # two slabs and the manifest
    empty = patch_version(store, None, SHAPE, box, (9, 0, 0))  # a first stroke: on an empty mask
    first = np.zeros(SHAPE, np.uint8)
    first[9, 0:3, 0:3] = 2
    assert mask_npy(store, empty) == to_npy(first)
    wide = patch_version(store, v1, SHAPE, np.full((1, 1, 1), 300, np.uint16), (0, 0, 0))
    assert load_mask(store, wide).dtype == np.uint16 and int(load_mask(store, wide)[0, 0, 0]) == 300


def test_a_version_stored_whole_still_reads_and_takes_strokes(tmp_path: Path) -> None:
    store = MaskStore(tmp_path)
    raw = to_npy(_mask(3))
    legacy = store.put(raw)  # how versions were stored before slabs: one .npy blob
    assert manifest_of(store, legacy) is None
    assert mask_npy(store, legacy) == raw and zlib.decompress(deflate_stream(store, legacy)) == raw
    assert np.array_equal(load_mask(store, legacy), _mask(3))
    v2 = patch_version(store, legacy, SHAPE, np.ones((1, 2, 2), np.uint8), (0, 0, 0))
    expected = _mask(3)
    expected[0, :2, :2] = 1
    assert manifest_of(store, v2) is not None and mask_npy(store, v2) == to_npy(expected)


def test_damaged_or_missing_slabs_are_found(tmp_path: Path) -> None:
    store = MaskStore(tmp_path)
    sha = store_npy(store, to_npy(_mask()), slab_slices=4)
    assert store.verify() == []
    slab = manifest_of(store, sha).slabs[1]
    path = store.segment_path(slab)
    path.write_bytes(zlib.compressobj(1, zlib.DEFLATED, -15).compress(b"x" * 10) + b"\0\0\xff\xff")
    assert store.verify() == [slab + ".d"]
    with pytest.raises(IntegrityError, match="does not match its name"):
        mask_npy(store, sha)
    path.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        np.load(io.BytesIO(deflate_stream(store, sha)))
