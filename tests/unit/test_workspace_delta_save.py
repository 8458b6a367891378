"""Delta saves of the workspace's drawing (001 §10.2.1, §10.2.2): a gzip box of changed voxels applied onto
the stored draft with If-Match, checked like a whole mask, stored as a new version with an audit entry."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from platform_support import SHAPE, cube_mask, make_site, npy


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _patch(site, user: str, task: int, box: np.ndarray, at: tuple[int, int, int], version: int | None, gz: bool = True):
    headers = {**site.as_(user), "Content-Type": "application/octet-stream"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    body = npy(box)
    if gz:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    z, y, x = at
    return site.client.patch(
        f"/api/v1/tasks/{task}/draft", params={"z": z, "y": y, "x": x}, content=body, headers=headers
    )


def _draft(site, user: str, task: int) -> np.ndarray:
    import io

    r = site.client.get(f"/api/v1/tasks/{task}/draft", headers=site.as_(user))
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))


def test_a_patch_lands_on_the_stored_draft_as_a_new_version(site) -> None:
    _, user, task = site.one_task()
    first = _patch(site, user, task["id"], np.full((1, 2, 3), 5, np.uint8), (2, 4, 6), 0)
    assert first.status_code == 200, first.text
    assert first.json()["draft_version"] == 1 and first.headers["etag"] == '"1"'
    expected = np.zeros(SHAPE, np.uint8)
    expected[2, 4:6, 6:9] = 5
    assert np.array_equal(_draft(site, user, task["id"]), expected), "the first patch is not on an empty mask"
    assert site.save(user, task["id"], cube_mask(), 1).status_code == 200  # a whole-mask save in between
    erase = np.zeros((2, 2, 2), np.uint8)
    second = _patch(site, user, task["id"], erase, (2, 5, 5), 2, gz=False)
    assert second.status_code == 200 and second.json()["draft_version"] == 3
    expected = cube_mask()
    expected[2:4, 5:7, 5:7] = 0
    assert np.array_equal(_draft(site, user, task["id"]), expected)
    audit = site.client.get("/api/v1/audit", params={"action": "save"}, headers=site.as_("admin")).json()
    patched = [e["detail"] for e in audit if e["detail"].get("patch")]
    assert [p["patch"]["offset_zyx"] for p in patched] == [[2, 4, 6], [2, 5, 5]]
    assert all(len(p["mask_sha256"]) == 64 for p in patched)


def test_a_stale_or_missing_if_match_is_refused_and_nothing_changes(site) -> None:
    _, user, task = site.one_task()
    assert site.save(user, task["id"], cube_mask(), 0).status_code == 200
    stale = _patch(site, user, task["id"], np.ones((1, 1, 1), np.uint8), (0, 0, 0), 0)
    assert stale.status_code == 409 and "version 0" in stale.json()["message"]
    assert _patch(site, user, task["id"], np.ones((1, 1, 1), np.uint8), (0, 0, 0), None).status_code == 428
    assert np.array_equal(_draft(site, user, task["id"]), cube_mask())


@pytest.mark.parametrize(
    ("box", "at", "status", "words"),
    [
        (np.full((1, 2, 2), 7, np.uint8), (0, 0, 0), 422, "label map"),
        (np.ones((1, 2, 2), np.float32), (0, 0, 0), 422, "dtype"),
        (np.ones((2, 2, 2), np.uint8), (SHAPE[0] - 1, 0, 0), 422, "leaves the image grid"),
        (np.ones((2, 2), np.uint8), (0, 0, 0), 422, "3 axes"),
    ],
)
def test_a_patch_is_checked_like_a_whole_mask(site, box: np.ndarray, at: tuple, status: int, words: str) -> None:
    _, user, task = site.one_task()
    r = _patch(site, user, task["id"], box, at, 0)
    assert r.status_code == status and words in r.json()["message"], r.text
    assert site.client.get(f"/api/v1/tasks/{task['id']}/draft", headers=site.as_(user)).status_code == 404


def test_a_corrupt_or_oversized_body_is_refused(site) -> None:
    _, user, task = site.one_task()
    headers = {**site.as_(user), "If-Match": '"0"', "Content-Encoding": "gzip"}
    url, at = f"/api/v1/tasks/{task['id']}/draft", {"z": 0, "y": 0, "x": 0}
    corrupt = site.client.patch(url, params=at, content=b"\x1f\x8bnot gzip", headers=headers)
    assert corrupt.status_code == 400 and "cannot be inflated" in corrupt.json()["message"]
    bomb = gzip.compress(b"\0" * (int(np.prod(SHAPE)) * 4 + 10**6))
    big = site.client.patch(url, params=at, content=bomb, headers=headers)
    assert big.status_code == 413 and "inflates beyond" in big.json()["message"]
    other = site.client.patch(url, params=at, content=b"x", headers={**headers, "Content-Encoding": "br"})
    assert other.status_code == 415 and "br" in other.json()["message"]
