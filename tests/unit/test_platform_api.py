"""The platform API end to end, on SQLite and on a real PostgreSQL (001 §6, §9, §10, §11)."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from platform_support import PASSWORD, SHAPE, TASK_DEFINITION, cube_mask, make_site, nifti_b64, npy

from aimd.core.otp import next_code


@pytest.fixture
def site(tmp_path: Path, database_url: str):
    s = make_site(tmp_path / "data", database_url)
    yield s
    s.platform.close()


def _annotate_both(site, project: int, masks: dict[str, np.ndarray]) -> dict[str, int]:
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    out = {}
    for user, mask in masks.items():
        (task,) = [t for t in site.tasks(user, status="open") if t["kind"] == "annotate"]
        assert site.save(user, task["id"], mask).status_code == 200
        r = site.submit(user, task["id"])
        assert r.status_code == 200, r.text
        out[user] = r.json()
    return out


def test_full_workflow_review_reject_rework_accept_freeze_export(site) -> None:
    project = site.project()
    case = site.case(project)
    results = _annotate_both(site, project, {"ann1": cube_mask(), "ann2": cube_mask()})
    assert results["ann1"]["routed"]["next"] == "waiting for readers"
    routed = results["ann2"]["routed"]
    assert routed["next"] == "review" and routed["agreement"]["min_dice"] >= 0.85
    (review,) = site.tasks("rev", status="open")
    r = site.client.post(
        f"/api/v1/tasks/{review['id']}/review", json={"outcome": "reject", "reason": ""}, headers=site.as_("rev")
    )
    assert r.status_code == 422 and "reason" in r.json()["message"]
    r = site.client.post(
        f"/api/v1/tasks/{review['id']}/review",
        json={"outcome": "reject", "reason": "nodule boundary too tight"},
        headers=site.as_("rev"),
    )
    assert r.status_code == 200 and len(r.json()["rework_tasks"]) == 2
    for user in ("ann1", "ann2"):
        (rework,) = [t for t in site.tasks(user, status="open") if t["kind"] == "rework"]
        draft = site.client.get(f"/api/v1/tasks/{rework['id']}/draft", headers=site.as_(user))
        assert draft.status_code == 200 and draft.headers["etag"] == '"1"'
        assert site.save(user, rework["id"], cube_mask(grow=1)).status_code == 200
        assert site.submit(user, rework["id"]).json()["routed"]["next"] == "review"
    for review in site.tasks("rev", status="open"):
        r = site.client.post(
            f"/api/v1/tasks/{review['id']}/review", json={"outcome": "accept"}, headers=site.as_("rev")
        )
        assert r.status_code == 200
    subs = site.client.get(f"/api/v1/cases/{case}/submissions", headers=site.as_("rev")).json()
    assert len(subs) == 4 and sum(s["current"] for s in subs) == 2
    old, new = subs[0]["id"], next(s["id"] for s in subs if s["current"] and s["reader"] == subs[0]["reader"])
    diff = site.client.get("/api/v1/diff", params={"a": old, "b": new}, headers=site.as_("rev")).json()
    nodule = diff["labels"]["5"]
    assert nodule["label_code"] == "LUNG_NODULE" and nodule["dice"] < 1 and nodule["volume_change_ml"] > 0
    assert nodule["changed_slices"] == [2, 3] and nodule["hd95_mm"] > 0
    sample = site.client.post(f"/api/v1/projects/{project}/qc/sample", json={"seed": 1}, headers=site.as_("qc"))
    assert sample.json()["sampled_cases"] == [case]
    (qc_task,) = sample.json()["tasks"]
    r = site.client.post(f"/api/v1/tasks/{qc_task}/qc-decision", json={"outcome": "pass"}, headers=site.as_("qc"))
    assert r.status_code == 200
    assert site.client.post(f"/api/v1/projects/{project}/freeze", headers=site.as_("admin")).status_code == 200
    out = site.client.post(f"/api/v1/projects/{project}/export", headers=site.as_("admin"))
    assert out.status_code == 200, out.text
    trace = Path(out.json()["traceability"])
    import json

    record = json.loads(trace.read_text())["cases"][0]
    assert {d["kind"] for d in record["decisions"]} >= {"agreement", "review", "qc_sample"}
    assert record["data_source"] == {"site": "phantom", "batch": "b1"} and len(record["annotators"]) == 2
    # the exported package passes the engine's independent verification, and a changed file is found (§10.1.5)
    from aimd.annotation.verify import verify_export

    assert [f.code for f in verify_export(trace.parent) if f.is_error] == []
    exported = sorted(trace.parent.rglob("*.nii.gz"))[0]
    exported.chmod(0o644)
    exported.write_bytes(exported.read_bytes()[:-10])
    assert any(f.is_error for f in verify_export(trace.parent))
    progress = site.client.get(f"/api/v1/projects/{project}/progress", headers=site.as_("admin")).json()
    assert progress["accepted"] == 1 and progress["per_person"]["ann1"]["rework.submitted"] == 1
    verify = site.client.get("/api/v1/audit/verify", headers=site.as_("qc")).json()
    assert verify["ok"] and verify["entries"] > 20
    actions = {
        e["action"] for e in site.client.get("/api/v1/audit", params={"limit": 1000}, headers=site.as_("admin")).json()
    }
    assert {"login", "import", "save", "submit", "review", "qc_sample", "freeze", "export"} <= actions


def test_disagreement_goes_to_arbitration(site) -> None:
    project = site.project()
    site.case(project)
    far = cube_mask()
    far[far == 5] = 1
    far[1:5, 10:14, 10:14] = 5
    results = _annotate_both(site, project, {"ann1": cube_mask(), "ann2": far})
    routed = results["ann2"]["routed"]
    assert routed["next"] == "arbitration" and routed["agreement"]["single_reader_objects"] == 2
    (arb,) = site.tasks("arb", status="open")
    assert site.save("arb", arb["id"], cube_mask()).status_code == 200
    assert site.submit("arb", arb["id"]).json()["routed"]["next"] == "review"


def test_autosave_conflicts_and_idempotent_submit(site) -> None:
    project = site.project(readers=1)
    site.case(project)
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    (task,) = site.tasks("ann1") or site.tasks("ann2")
    user = "ann1" if site.tasks("ann1") else "ann2"
    tid = task["id"]
    r = site.client.put(f"/api/v1/tasks/{tid}/draft", content=npy(cube_mask()), headers=site.as_(user))
    assert r.status_code == 428
    assert site.save(user, tid, cube_mask(), version=0).json()["draft_version"] == 1
    stale = site.save(user, tid, cube_mask(grow=1), version=0)
    assert stale.status_code == 409 and "stale" in stale.json()["message"]
    draft = site.client.get(f"/api/v1/tasks/{tid}/draft", headers=site.as_(user))
    assert np.array_equal(np.load(io.BytesIO(draft.content)), cube_mask())
    first = site.submit(user, tid, key="k-1")
    again = site.submit(user, tid, key="k-1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers.get("idempotent-replayed") == "true"
    assert site.submit(user, tid, key="k-2").status_code == 409
    subs = site.client.get("/api/v1/cases/1/submissions", headers=site.as_("rev")).json()
    assert len(subs) == 1


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (npy(np.zeros((6, 16, 15), np.uint8)), 422, "shape"),
        (npy(np.zeros(SHAPE, np.float32)), 422, "dtype"),
        (npy(np.full(SHAPE, 9, np.uint8)), 422, "not in the project's label map"),
        (npy(cube_mask())[:-100], 400, "truncated"),
        (b"", 400, "empty"),
    ],
    ids=["wrong-shape", "wrong-dtype", "label-outside-taxonomy", "truncated", "empty"],
)
def test_malformed_masks_are_refused_and_nothing_is_stored(site, body: bytes, status: int, words: str) -> None:
    project, user, task = site.one_task()
    blobs_before = len(site.platform.blobs)
    r = site.client.put(
        f"/api/v1/tasks/{task['id']}/draft", content=body, headers={**site.as_(user), "If-Match": '"0"'}
    )
    assert r.status_code == status and words in r.json()["message"], r.text
    assert len(site.platform.blobs) == blobs_before
    assert site.client.get(f"/api/v1/tasks/{task['id']}", headers=site.as_(user)).json()["draft_version"] == 0


def test_level1_qc_blocks_a_bad_submission(site) -> None:
    project, user, task = site.one_task()
    gap = cube_mask()
    gap[2] = 0  # the nodule and the lung skip a slice: not z-continuous
    gap[3, 5:9, 5:9] = 5
    gap[1:5, 2:14, 2:14][gap[1:5, 2:14, 2:14] == 0] = 0
    site.save(user, task["id"], gap)
    r = site.submit(user, task["id"])
    assert r.status_code == 422 and r.json()["findings"], r.text
    assert site.client.get(f"/api/v1/tasks/{task['id']}", headers=site.as_(user)).json()["status"] == "open"


def test_import_refuses_identifiers_and_keeps_case_parts_together(site) -> None:
    project = site.project()
    body = {
        "case_key": "c-id",
        "image_nifti_b64": nifti_b64(),
        "report_text": "患者宋华，病历号 1209457875，电话 13812345678",
    }
    r = site.client.post(f"/api/v1/projects/{project}/cases", json=body, headers=site.as_("intake"))
    assert r.status_code == 422 and "identifiers" in r.json()["message"]
    assert {h["kind"] for h in r.json()["hits"]} >= {"NAME", "PHONE"}
    body = {**body, "report_text": "右肺结节", "fields": {"contact": {"phone": "13812345678"}}}
    r = site.client.post(f"/api/v1/projects/{project}/cases", json=body, headers=site.as_("intake"))
    assert r.status_code == 422 and r.json()["hits"][0]["where"] == "fields.contact.phone"
    bad = {**body, "fields": {}, "image_nifti_b64": "bm90IGEgbmlmdGk="}
    r = site.client.post(f"/api/v1/projects/{project}/cases", json=bad, headers=site.as_("intake"))
    assert r.status_code == 422 and "NIfTI" in r.json()["message"]
    case = site.case(project)
    cases = site.client.get(f"/api/v1/projects/{project}/cases", headers=site.as_("admin")).json()
    assert [c["id"] for c in cases] == [case] and cases[0]["report_text"] and cases[0]["fields"]["age"] == 61


def test_project_task_definition_is_validated(site) -> None:
    body = {"name": "p", "task_definition": {**TASK_DEFINITION, "alignment_rules": ""}, "label_map": {"1": "LUNG"}}
    r = site.client.post("/api/v1/projects", json=body, headers=site.as_("admin"))
    assert r.status_code == 422 and "alignment_rules" in r.text
    body = {"name": "p", "task_definition": TASK_DEFINITION, "label_map": {"1": "NOT_A_LABEL"}}
    assert site.client.post("/api/v1/projects", json=body, headers=site.as_("admin")).status_code == 422
    body = {"name": "p", "task_definition": TASK_DEFINITION, "label_map": {"1": "LUNG"}}
    p = site.client.post("/api/v1/projects", json=body, headers=site.as_("admin")).json()
    assert p["dice_threshold"] == 0.85 and p["kappa_threshold"] == 0.75 and p["readers"] == 2


def test_login_rules_lockout_mfa_and_one_session(site) -> None:
    c = site.client
    r = c.post("/api/v1/auth/login", json={"username": "rev", "password": PASSWORD})
    assert r.status_code == 401 and "TOTP" in r.json()["message"]
    old = site.as_("ann1")
    assert c.get("/api/v1/me", headers=old).status_code == 200
    new = site.login("ann1")
    r = c.get("/api/v1/me", headers=old)
    assert r.status_code == 401 and "replaced" in r.json()["message"]
    assert c.get("/api/v1/me", headers=new).status_code == 200
    for _ in range(5):
        assert c.post("/api/v1/auth/login", json={"username": "ann2", "password": "wrong 1234567"}).status_code == 401
    r = c.post("/api/v1/auth/login", json={"username": "ann2", "password": PASSWORD})
    assert r.status_code == 401 and "locked" in r.json()["message"]
    secret = site.secrets["admin"]["totp_secret"]
    r = c.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD, "totp": next_code(secret)})
    assert r.status_code == 200
    site.headers["admin"] = {"Authorization": f"Bearer {r.json()['token']}"}
    r = c.post(
        "/api/v1/users", json={"username": "weak", "role": "annotator", "password": "short"}, headers=site.as_("admin")
    )
    assert r.status_code == 422 and "at least" in r.json()["message"]
    r = c.post("/api/v1/users", json={"username": "new", "role": "reviewer"}, headers=site.as_("admin"))
    assert r.status_code == 201 and r.json()["totp_secret"] and len(r.json()["password"]) >= 12
    assert c.patch("/api/v1/users/ann1", json={"disabled": True}, headers=site.as_("admin")).status_code == 200
    assert c.get("/api/v1/me", headers=new).status_code == 401
    actions = [e["action"] for e in c.get("/api/v1/audit", params={"limit": 1000}, headers=site.as_("admin")).json()]
    assert "login.failed" in actions and "user.change" in actions


def test_a_totp_code_opens_one_session_only(site) -> None:
    """RFC 6238 §5.2: a code accepted once is refused after, also an older one of the drift window; the next
    step's code is taken; the refusal is audited and counts towards the lockout."""
    from aimd.core.otp import code_at, current_step

    c, secret = site.client, site.secrets["rev"]["totp_secret"]

    def login(step: int):
        body = {"username": "rev", "password": PASSWORD, "totp": code_at(secret, step)}
        return c.post("/api/v1/auth/login", json=body)

    now = current_step()
    with ThreadPoolExecutor(3) as pool:  # three logins race with one code (site.login used at most the present step)
        burst = list(pool.map(login, [now + 1] * 3))
    assert sorted(r.status_code for r in burst) == [200, 401, 401], [r.text for r in burst]
    first = next(r for r in burst if r.status_code == 200)
    assert all("used already" in r.json()["message"] for r in burst if r is not first)
    again = login(now + 1)
    assert again.status_code == 401 and "used already" in again.json()["message"], again.text
    assert "next code" in again.json()["hint"]
    older = login(now)  # inside the drift window but not newer than the code accepted
    assert older.status_code == 401 and "used already" in older.json()["message"]
    assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {first.json()['token']}"}).status_code == 200
    entries = site.platform.audit.entries(action="login.failed", subject="user:rev")
    assert [e["detail"]["reason"] for e in entries[-4:]] == ["totp reused"] * 4
    assert entries[-1]["detail"]["failures"] >= 2  # counted towards the lockout (a success in the burst resets it)


def test_frozen_version_is_read_only_and_change_requests_keep_it(site) -> None:
    project = site.project(readers=1)
    case = site.case(project)
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    user = "ann1" if site.tasks("ann1") else "ann2"
    (task,) = site.tasks(user)
    site.save(user, task["id"], cube_mask())
    site.submit(user, task["id"])
    (review,) = site.tasks("rev", status="open")
    site.client.post(f"/api/v1/tasks/{review['id']}/review", json={"outcome": "accept"}, headers=site.as_("rev"))
    assert site.client.post(f"/api/v1/projects/{project}/freeze", headers=site.as_("admin")).status_code == 200
    r = site.client.post(
        f"/api/v1/projects/{project}/change-requests",
        json={"case_id": case, "reason": "nodule missed"},
        headers=site.as_(user),
    )
    assert r.status_code == 201
    cr = r.json()["id"]
    assert (
        site.client.post(
            f"/api/v1/change-requests/{cr}/decide", json={"approve": True}, headers=site.as_("admin")
        ).json()["status"]
        == "approved"
    )
    project_now = site.client.get(f"/api/v1/projects/{project}", headers=site.as_("admin")).json()
    assert project_now["version"] == 2 and not project_now["frozen"]
    (rework,) = [t for t in site.tasks(user, status="open") if t["kind"] == "rework"]
    assert site.save(user, rework["id"], cube_mask(grow=1)).status_code == 200
    site.submit(user, rework["id"])
    subs = site.client.get(f"/api/v1/cases/{case}/submissions", headers=site.as_("rev")).json()
    assert [s["project_version"] for s in subs] == [1, 2]
    site.client.post(f"/api/v1/projects/{project}/freeze", headers=site.as_("admin"))
    r = site.save(user, rework["id"], cube_mask())
    assert r.status_code == 409


def test_destroying_a_project_writes_a_destruction_record(site) -> None:
    project = site.project()
    site.case(project)
    assert site.client.delete(f"/api/v1/projects/{project}", headers=site.as_("admin")).status_code == 422
    r = site.client.delete(
        f"/api/v1/projects/{project}", params={"reason": "retention period over"}, headers=site.as_("admin")
    )
    assert r.status_code == 200, r.text
    rec = r.json()
    assert rec["what"]["cases"] == ["case-1"] and rec["by"] == "admin"
    assert rec["blobs_removed"] and set(rec["blobs_removed"]) <= set(rec["what"]["blobs"])
    assert "unlinked after the commit" in rec["method"]
    assert site.client.get(f"/api/v1/projects/{project}", headers=site.as_("admin")).status_code == 404
    assert site.platform.audit.verify() is None


def test_health_metrics_and_openapi(site) -> None:
    assert site.client.get("/v2/health/live").json() == {"live": True}
    assert site.client.get("/v2/health/ready").json() == {"ready": True}
    assert "aimd_platform_requests" in site.client.get("/metrics").text
    paths = site.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/tasks/{task_id}/draft" in paths


def test_model_prelabels_are_drafts_with_correction_records(site, tmp_path: Path) -> None:
    import torch

    from aimd.models.adapters import save_torchscript
    from aimd.models.networks.unet import UNetB1
    from aimd.models.specs import InputSpec, Intensity, OutputSpec

    torch.manual_seed(0)
    net = UNetB1(features=(4, 8, 8, 8, 8), dropout=0.0, out_channels=3).eval()
    spec_in = InputSpec(
        modality="CT",
        channels=1,
        patch_size=(16, 16),
        size_multiple=16,
        spacing_mm=(0.8, 0.8),
        intensity=Intensity(method="window", windows=((40.0, 400.0),)),
    )
    spec_out = OutputSpec(task="segmentation", labels={0: "background", 1: "lung", 2: "nodule"}, activation="softmax")
    model_path = save_torchscript(net, tmp_path / "m.ts", spec_in, spec_out)
    body = {
        "name": "seg",
        "version": "1.0",
        "path": str(model_path),
        "parameters": {"overlap": 0.25},
        "label_values": {"1": 1, "2": 5},
    }
    r = site.client.post("/api/v1/models", json=body, headers=site.as_("admin"))
    assert r.status_code == 201, r.text
    model_id = r.json()["id"]
    project, user, task = site.one_task()
    r = site.client.post(f"/api/v1/tasks/{task['id']}/prelabel", json={"model_id": model_id}, headers=site.as_(user))
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "seg@1.0"
    draft = site.client.get(f"/api/v1/tasks/{task['id']}/draft", headers=site.as_(user))
    assert draft.headers["x-draft-source"] == "seg@1.0"
    pre = np.load(io.BytesIO(draft.content))
    assert pre.shape == SHAPE and set(np.unique(pre)) <= {0, 1, 5}
    assert site.save(user, task["id"], cube_mask()).status_code == 200
    out = site.submit(user, task["id"])
    assert out.status_code == 200, out.text
    corr = out.json()["correction"]
    assert corr["model"] == "seg@1.0" and corr["identical_to_model"] is False
    assert corr["edited_voxels"] == int(np.count_nonzero(pre != cube_mask()))
    assert 0 <= corr["dice_model_to_final"] < 1 and corr["seconds_spent"] >= 0
    entries = site.client.get("/api/v1/audit", params={"action": "prelabel"}, headers=site.as_("admin")).json()
    assert entries[0]["detail"]["model"] == "seg@1.0" and len(entries[0]["detail"]["model_sha256"]) == 64
