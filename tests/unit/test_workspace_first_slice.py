"""The workspace's first view of a large image (001 §10.2.1): ``GET /tasks/{id}/slice?z=`` gives one axial
slice of the case image at full resolution, cut out of the stored compressed volume without inflating
the rest; it is checked against the whole image, refused outside the image and to those who may not see
the task, and a damaged stored stream is named."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest

from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.platform.overview import axial_slice


@pytest.fixture
def site(tmp_path):
    from platform_support import make_site

    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_each_slice_is_the_images_slice_at_full_resolution(site) -> None:
    _, user, task = site.one_task()
    image = np.load(io.BytesIO(site.client.get(f"/api/v1/tasks/{task['id']}/image", headers=site.as_(user)).content))
    for z in (0, image.shape[0] // 2, image.shape[0] - 1):
        r = site.client.get(f"/api/v1/tasks/{task['id']}/slice", params={"z": z}, headers=site.as_(user))
        assert r.status_code == 200 and r.headers["x-slice"] == str(z)
        one = np.load(io.BytesIO(r.content))
        assert one.shape == (1, *image.shape[1:]) and one.dtype == image.dtype
        assert np.array_equal(one[0], image[z])
    paths = site.client.get("/openapi.json").json()["paths"]
    assert "application/octet-stream" in paths["/api/v1/tasks/{task_id}/slice"]["get"]["responses"]["200"]["content"]


def test_a_slice_outside_the_image_or_of_an_unseen_task_is_refused(site) -> None:
    _, user, task = site.one_task()
    nz = site.client.get(f"/api/v1/tasks/{task['id']}", headers=site.as_(user)).json()["image"]["shape"][0]
    url = f"/api/v1/tasks/{task['id']}/slice"
    r = site.client.get(url, params={"z": nz}, headers=site.as_(user))
    assert r.status_code == 422 and r.json()["where"] == "z" and f"{nz} slices" in r.json()["message"]
    assert site.client.get(url, params={"z": -1}, headers=site.as_(user)).status_code == 422
    other = "ann2" if user == "ann1" else "ann1"
    assert site.client.get(url, params={"z": 0}, headers=site.as_(other)).status_code == 404
    assert site.client.get(url, params={"z": 0}).status_code == 401


def test_a_damaged_stored_stream_is_named() -> None:
    arr = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    stream = zlib.compress(_npy(arr))
    assert np.array_equal(np.load(io.BytesIO(axial_slice(stream, 2)))[0], arr[2])
    with pytest.raises(IntegrityError, match="ends before"):
        axial_slice(stream[: len(stream) // 2], 2)
    with pytest.raises(IntegrityError, match="cannot be inflated"):
        axial_slice(b"\x00" * 64, 0)
    with pytest.raises(IntegrityError, match="3-D"):
        axial_slice(zlib.compress(_npy(arr[0])), 0)
    with pytest.raises(InvalidInputError, match="outside"):
        axial_slice(stream, 3)
