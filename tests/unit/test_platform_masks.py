"""Mask uploads sent as is or compressed (gzip / deflate): the same validation, the same stored bytes, and
loads that answer the stored compressed stream to a client that accepts deflate."""

from __future__ import annotations

import gzip
import hashlib
import io
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import zstandard
from platform_support import LABELS, SHAPE, cube_mask, make_site, npy

from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
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


@pytest.mark.parametrize("encoding", [None, "identity", "deflate", "gzip", "gzip-named", "zstd"])
def test_every_encoding_gives_the_same_stored_npy(encoding: str | None) -> None:
    raw = npy(cube_mask())
    body = {
        None: raw,
        "identity": raw,
        "deflate": zlib.compress(raw, 9),
        "gzip": gzip.compress(raw),
        "gzip-named": _gzip_with_name(raw),
        "zstd": zstandard.ZstdCompressor(level=3).compress(raw),
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
        (zstandard.ZstdCompressor().compress(npy(cube_mask()))[:-9], "zstd", 400, "truncated"),
        (zstandard.ZstdCompressor().compress(b"\0" * 10_000_000), "zstd", 413, "inflates beyond"),
        (zstandard.ZstdCompressor().compress(npy(cube_mask())) + b"zz", "zstd", 400, "2 bytes follow"),
        (b"\x28\xb5\x2f\xfd garbage", "zstd", 400, "cannot be decompressed"),
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
        "zstd-truncated",
        "zstd-bomb",
        "zstd-trailing",
        "not-zstd",
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


def _nifti(mask: np.ndarray, spacing=(0.8, 0.8, 2.0), origin=(0.0, 0.0, 0.0), gz: bool = True) -> bytes:
    """``mask`` (z, y, x) as a NIfTI file on a grid like the phantom case image's."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("mask.nii.gz" if gz else "mask.nii")
        write_nifti(Volume(mask, spacing=spacing, origin=origin), path)
        return path.read_bytes()


def test_a_nifti_mask_on_the_case_grid_is_saved_as_its_voxels(site) -> None:
    project, user, task = site.one_task()
    url = f"/api/v1/tasks/{task['id']}/draft"
    auth = site.as_(user)
    # a .nii.gz recognised by its bytes, then a .nii named by its Content-Type, then a zstd .npy
    saved = site.client.put(url, content=_nifti(cube_mask()), headers={**auth, "If-Match": '"0"'})
    assert saved.status_code == 200, saved.text
    assert site.client.get(url, headers=auth).content == npy(cube_mask())
    plain = _nifti(cube_mask(grow=1), gz=False)
    r = site.client.put(url, content=plain, headers={**auth, "If-Match": '"1"', "Content-Type": "application/x-nifti"})
    assert r.status_code == 200 and site.client.get(url, headers=auth).content == npy(cube_mask(grow=1))
    packed = zstandard.ZstdCompressor().compress(npy(cube_mask(grow=2)))
    r = site.client.put(url, content=packed, headers={**auth, "If-Match": '"2"', "Content-Encoding": "zstd"})
    assert r.status_code == 200 and site.client.get(url, headers=auth).content == npy(cube_mask(grow=2))


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (_nifti(cube_mask(), spacing=(0.8, 0.8, 2.5)), None, "spacing"),
        (_nifti(cube_mask(), origin=(0.0, 5.0, 0.0)), None, "origin"),
        (_nifti(np.zeros((6, 16, 15), np.uint8)), None, "grid [6, 16, 15]"),
        (npy(cube_mask()), "application/x-nifti", "not a NIfTI file"),
        (_nifti(cube_mask())[:-20], None, "truncated"),
    ],
    ids=["spacing", "origin", "shape", "npy-as-nifti", "truncated"],
)
def test_a_nifti_mask_off_the_grid_is_refused_naming_the_mismatch(site, body, content_type, words) -> None:
    project, user, task = site.one_task()
    before = _files(site)
    headers = {**site.as_(user), "If-Match": '"0"', "Content-Type": content_type or "application/octet-stream"}
    r = site.client.put(f"/api/v1/tasks/{task['id']}/draft", content=body, headers=headers)
    assert r.status_code == 400 and words in r.json()["message"], r.text
    assert "resample" in r.json()["hint"] or "send" in r.json()["hint"]
    assert _files(site) == before
