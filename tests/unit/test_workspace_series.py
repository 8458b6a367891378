"""Several series per case with a stored registration onto the annotated image (001 §6.4.1): aligned by a
shared FrameOfReferenceUID or by rigid Mattes-MI registration, its quality stored, the series resampled
onto the reference grid; a registration that fails is stored as such and its image is refused clearly."""

from __future__ import annotations

import base64
import io
import tempfile
from pathlib import Path

import numpy as np
import pytest
from platform_support import make_site

from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
from aimd.platform.series import register_series

FOR_UID = "1.2.826.0.1.3680043.8.498.1"


def phantom(shift_mm: float = 0.0) -> Volume:
    """A body with a lesion; MR-like contrast (bright body, dark lesion), origin moved by ``shift_mm`` in x."""
    zz, yy, xx = np.ogrid[:24, :64, :64]
    body = ((yy - 32) ** 2 / 700 + (xx - 32) ** 2 / 500) < 1
    lesion = ((zz - 12) ** 2 + (yy - 30) ** 2 + (xx - 40) ** 2) < 64
    rng = np.random.default_rng(1)
    arr = np.where(body, 300, 0) + np.where(lesion, -200, 0) + rng.normal(0, 10, (24, 64, 64))
    return Volume(arr.astype(np.int16), spacing=(1.0, 1.0, 2.0), origin=(shift_mm, 0.0, 0.0), modality="MR")


def ct_phantom() -> Volume:
    """The CT of the same body: dark air, soft tissue, a bright lesion."""
    mr = phantom()
    arr = np.where(mr.array > 150, 40, -1000) + np.where((mr.array > 50) & (mr.array < 150), 200, 0)
    return Volume(arr.astype(np.int16), spacing=mr.spacing, modality="CT")


def test_rigid_registration_recovers_a_known_shift_across_contrasts() -> None:
    ct = ct_phantom()
    reg, moved = register_series(ct, phantom(4.0), same_frame=False)
    assert reg["status"] == "ok" and reg["method"] == "rigid_mattes_mi"
    assert abs(reg["matrix_ref_to_series"][0][3] - 4.0) < 0.5, reg["matrix_ref_to_series"]
    identity, _ = register_series(ct, phantom(4.0), same_frame=True)
    assert reg["mattes_mi"] < identity["mattes_mi"], "registration did not improve the mutual information"
    assert moved is not None and moved.shape == ct.shape and moved.dtype == ct.array.dtype


def test_a_series_outside_the_reference_fails_with_its_reason() -> None:
    reg, moved = register_series(phantom(), phantom(900.0), same_frame=True)
    assert reg["status"] == "failed" and moved is None and "covers 0%" in reg["message"]


def _b64(volume: Volume) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.nii.gz"
        write_nifti(volume, path)
        return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _task_with_frame_of_reference(site) -> tuple[int, int, str, int]:
    """A one-reader project whose case carries FOR_UID: (project, case, annotator, task)."""
    project = site.project(readers=1)
    body = {"case_key": "for-1", "image_nifti_b64": _b64(ct_phantom()), "frame_of_reference_uid": FOR_UID}
    case = site.client.post(f"/api/v1/projects/{project}/cases", json=body, headers=site.as_("intake")).json()["id"]
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    user = "ann1" if site.tasks("ann1") else "ann2"
    return project, case, user, site.tasks(user)[0]["id"]


def test_series_are_imported_listed_and_fetched_on_the_reference_grid(site) -> None:
    project, case, user, task = _task_with_frame_of_reference(site)
    url = f"/api/v1/projects/{project}/cases/{case}/series"
    ct = ct_phantom()
    geometry = {"spacing": ct.spacing, "direction": ct.direction}
    mr = Volume(-ct.array, origin=ct.origin, modality="MR", **geometry)
    shifted = Volume(-ct.array, origin=tuple(np.add(ct.origin, (3.0, 0, 0))), modality="MR", **geometry)
    far = Volume(ct.array, origin=tuple(np.add(ct.origin, (900.0, 0, 0))), modality="CT", **geometry)
    bodies = [
        {"series_key": "t2", "image_nifti_b64": _b64(mr), "frame_of_reference_uid": FOR_UID},
        {"series_key": "t2-moved", "image_nifti_b64": _b64(shifted)},
        {"series_key": "far", "image_nifti_b64": _b64(far), "frame_of_reference_uid": FOR_UID},
    ]
    regs = []
    for body in bodies:
        r = site.client.post(url, json=body, headers=site.as_("intake"))
        assert r.status_code == 201, r.text
        regs.append(r.json()["registration"])
    assert [(r["method"], r["status"]) for r in regs] == [
        ("frame_of_reference", "ok"),
        ("rigid_mattes_mi", "ok"),
        ("frame_of_reference", "failed"),
    ]
    assert regs[0]["matrix_ref_to_series"] == np.eye(4).tolist() and regs[0]["overlap"] == 1.0
    assert abs(regs[1]["matrix_ref_to_series"][0][3] - 3.0) < 0.5 and regs[1]["mattes_mi"] < 0
    assert "covers 0%" in regs[2]["message"]
    again = site.client.post(url, json=bodies[2], headers=site.as_("intake"))
    assert again.status_code == 409 and again.json()["where"] == "series_key"
    listed = site.client.get(f"/api/v1/tasks/{task}/series", headers=site.as_(user)).json()
    assert listed["reference"]["image"]["shape"] == list(ct.shape)
    assert [s["series_key"] for s in listed["series"]] == ["t2", "t2-moved", "far"]
    t2, moved, far_id = (s["id"] for s in listed["series"])
    for sid in (t2, moved):
        img = site.client.get(f"/api/v1/tasks/{task}/series/{sid}/image", headers=site.as_(user))
        assert img.status_code == 200
        arr = np.load(io.BytesIO(img.content))
        assert arr.shape == ct.shape and np.corrcoef(arr.ravel(), -ct.array.ravel())[0, 1] > 0.8
    refused = site.client.get(f"/api/v1/tasks/{task}/series/{far_id}/image", headers=site.as_(user))
    assert refused.status_code == 409 and "registration" in refused.json()["message"]
    other = "ann2" if user == "ann1" else "ann1"
    assert site.client.get(f"/api/v1/tasks/{task}/series", headers=site.as_(other)).status_code == 404
    audit = site.client.get("/api/v1/audit", params={"action": "import.series"}, headers=site.as_("admin")).json()
    assert [e["detail"]["series"] for e in audit] == ["t2", "t2-moved", "far"]


def test_series_blobs_are_kept_by_collection_and_listed_by_destruction(site) -> None:
    import sqlalchemy as sa

    from aimd.platform import projects
    from aimd.platform.models import CaseSeries, Project, User

    project, case, _, _ = _task_with_frame_of_reference(site)
    body = {"series_key": "t2", "image_nifti_b64": _b64(phantom()), "frame_of_reference_uid": FOR_UID}
    r = site.client.post(f"/api/v1/projects/{project}/cases/{case}/series", json=body, headers=site.as_("intake"))
    assert r.status_code == 201, r.text
    with site.platform.sessions() as db:
        row = db.get(CaseSeries, r.json()["id"])
        shas = {row.image_sha256, row.resampled_sha256, row.image["nifti_sha256"]}
        assert None not in shas and shas <= projects.referenced_blobs(db)
        admin = db.scalar(sa.select(User).where(User.username == "admin"))
        record = projects.destroy_project(db, site.platform.audit, admin, db.get(Project, project), "test of erasure")
        assert shas <= set(record.what["blobs"]) and db.get(CaseSeries, row.id) is None
        db.commit()
        assert not shas & projects.referenced_blobs(db)


def test_the_overview_is_a_block_mean_within_the_voxel_budget(site) -> None:
    from aimd.platform.overview import overview

    arr = np.random.default_rng(2).integers(-1000, 1000, (10, 64, 64)).astype(np.int16)
    small, factors = overview(arr, max_voxels=5000)
    assert (
        small.size <= 5000
        and small.dtype == np.int16
        and small.shape == tuple(n // f for n, f in zip(arr.shape, factors, strict=True))
    )
    fz, fy, fx = factors
    assert small[1, 2, 3] == np.rint(arr[fz : 2 * fz, 2 * fy : 3 * fy, 3 * fx : 4 * fx].mean())
    _, user, task = site.one_task()
    r = site.client.get(f"/api/v1/tasks/{task['id']}/overview", headers=site.as_(user))
    assert r.status_code == 200 and r.headers["x-overview-factors"] == "1,1,1"  # a small image is its own overview
    image = site.client.get(f"/api/v1/tasks/{task['id']}/image", headers=site.as_(user))
    assert np.array_equal(np.load(io.BytesIO(r.content)), np.load(io.BytesIO(image.content)))
    other = "ann2" if user == "ann1" else "ann1"
    assert site.client.get(f"/api/v1/tasks/{task['id']}/overview", headers=site.as_(other)).status_code == 404
