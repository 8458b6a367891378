"""Mask uploads sent as is or compressed (gzip / deflate): the same validation, the same stored bytes, and
loads that answer the stored compressed stream to a client that accepts deflate."""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from pathlib import Path

import numpy as np
import pytest
from platform_support import LABELS, SHAPE, cube_mask, make_site, npy

from aimd.platform.mask_store import mask_npy
from aimd.platform.masks import MaskError, read_mask_upload

ALLOWED = set(LABELS)


def _files(site) -> int:
    """Stored files, whole blobs and mask slabs."""
    return len(list(site.platform.blobs.files()))


def _gzip_with_name(data: bytes) -> bytes:
    """A gzip member with FNAME and FEXTRA fields set (as some tools write them)."""
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08" + bytes([4 | 8]) + b"\0\0\0\0\0\xff" + b"\x03\0abc" + b"mask.npy\0"
    return header + body + zlib.crc32(data).to_bytes(4, "little") + len(data).to_bytes(4, "little")


@pytest.mark.parametrize("encoding", [None, "identity", "deflate", "gzip", "gzip-named"])
def test_every_encoding_gives_the_same_stored_npy(encoding: str | None) -> None:
    raw = npy(cube_mask())
    body = {
        None: raw,
        "identity": raw,
        "deflate": zlib.compress(raw, 9),
        "gzip": gzip.compress(raw),
        "gzip-named": _gzip_with_name(raw),
    }[encoding]
    up = read_mask_upload(body, shape=SHAPE, allowed=ALLOWED, encoding="gzip" if encoding == "gzip-named" else encoding)
    assert up.npy == raw and up.sha256 == hashlib.sha256(raw).hexdigest() and up.max_label == 5


def test_non_canonical_arrays_are_stored_in_the_canonical_form() -> None:
    mask = cube_mask()
    for variant in (np.asfortranarray(mask), mask.astype(">u2"), mask.astype(np.int32)):
        up = read_mask_upload(zlib.compress(npy(variant)), shape=SHAPE, allowed=ALLOWED, encoding="deflate")
        assert up.npy == npy(mask)
    wide = np.zeros(SHAPE, np.uint16)
    wide[0, 0, 0] = 300
    assert np.load(io.BytesIO(read_mask_upload(npy(wide), shape=SHAPE, allowed={300}).npy)).dtype == np.uint16


@pytest.mark.parametrize(
    ("body", "encoding", "status", "words"),
    [
        (gzip.compress(npy(cube_mask()))[:-30], "gzip", 400, "truncated"),
        (zlib.compress(npy(cube_mask()))[:40], "deflate", 400, "truncated"),
        (b"\x1f\x8b\x08\0\0\0\0\0\0\xff\x07garbage", "gzip", 400, "cannot be inflated"),
        (gzip.compress(npy(cube_mask())) * 2, "gzip", 400, "follow the compressed mask"),
        (zlib.compress(b"\0" * 10_000_000), "deflate", 413, "inflates beyond"),
        (npy(cube_mask()), "br", 415, "Content-Encoding 'br'"),
        (gzip.compress(npy(np.zeros((6, 16, 15), np.uint8))), "gzip", 422, "shape"),
        (zlib.compress(npy(np.full(SHAPE, 3, np.uint8))), "deflate", 422, "[3]"),
        (npy(np.full(SHAPE, -1, np.int16)), None, 422, "[-1]"),
        (npy(cube_mask()) + b"xx", None, 400, "2 bytes follow"),
        (b"PK\x03\x04 an npz", None, 400, "not a .npy"),
    ],
    ids=[
        "gzip-truncated",
        "deflate-truncated",
        "not-gzip",
        "two-members",
        "bomb",
        "unknown-encoding",
        "gzip-wrong-shape",
        "label-in-a-gap",
        "negative",
        "trailing",
        "npz",
    ],
)
def test_bad_uploads_name_the_problem(body: bytes, encoding: str | None, status: int, words: str) -> None:
    with pytest.raises(MaskError) as err:
        read_mask_upload(body, shape=SHAPE, allowed=ALLOWED, encoding=encoding)
    assert err.value.status == status and words in err.value.message, err.value.message


@pytest.fixture
def site(tmp_path: Path, database_url: str):
    s = make_site(tmp_path / "data", database_url)
    yield s
    s.platform.close()


def test_compressed_save_and_load_round_trip(site) -> None:
    project, user, task = site.one_task()
    tid, raw = task["id"], npy(cube_mask())
    url = f"/api/v1/tasks/{tid}/draft"
    headers = {**site.as_(user), "Content-Type": "application/octet-stream"}
    r = site.client.put(
        url, content=gzip.compress(raw), headers={**headers, "If-Match": '"0"', "Content-Encoding": "gzip"}
    )
    assert r.status_code == 200, r.text
    assert mask_npy(site.platform.blobs, r.json()["mask_sha256"]) == raw  # stored as slabs, byte-identical
    # a stale compressed save is still refused by If-Match, and a broken one stores nothing
    stale = site.client.put(
        url, content=zlib.compress(raw), headers={**headers, "If-Match": '"0"', "Content-Encoding": "deflate"}
    )
    assert stale.status_code == 409
    blobs_before = _files(site)
    cut = site.client.put(
        url, content=zlib.compress(raw)[:50], headers={**headers, "If-Match": '"1"', "Content-Encoding": "deflate"}
    )
    assert cut.status_code == 400 and "truncated" in cut.json()["message"] and _files(site) == blobs_before
    # an upload whose bytes differ from the SHA-256 the client declared (001 §10.2.4) is refused, nothing stored
    other = npy(cube_mask(grow=1))
    changed = site.client.put(
        url,
        content=gzip.compress(other),
        headers={
            **headers,
            "If-Match": '"1"',
            "Content-Encoding": "gzip",
            "X-Content-SHA256": hashlib.sha256(raw).hexdigest(),
        },
    )
    assert changed.status_code == 400 and "X-Content-SHA256" in changed.json()["message"]
    assert _files(site) == blobs_before
    declared = site.client.put(
        url,
        content=gzip.compress(other),
        headers={
            **headers,
            "If-Match": '"1"',
            "Content-Encoding": "gzip",
            "X-Content-SHA256": hashlib.sha256(other).hexdigest(),
        },
    )
    assert declared.status_code == 200 and declared.json()["draft_version"] == 2
    raw = other
    # load: the stored zlib stream to a client that accepts deflate, the plain .npy to one that does not
    packed = site.client.get(url, headers={**site.as_(user), "Accept-Encoding": "deflate"})
    assert packed.headers["content-encoding"] == "deflate" and packed.content == raw  # the client inflates it
    assert packed.headers["x-mask-sha256"] == declared.json()["mask_sha256"]
    plain = site.client.get(url, headers={**site.as_(user), "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == raw
    image = site.client.get(
        f"/api/v1/tasks/{tid}/image", headers={**site.as_(user), "Accept-Encoding": "gzip, deflate"}
    )
    assert image.headers["content-encoding"] == "deflate" and np.load(io.BytesIO(image.content)).shape == SHAPE
