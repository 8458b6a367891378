"""Pre-labels from a running ``aimd serve`` (001 §6.4.2, §10.1.6): the platform sends the case's NIfTI to
the device service's KServe v2 ``/v2/models/{name}/infer`` with its token, stores the returned mask as the
task's pre-label and the submission records the correction. One served model is a fixed 2-D network
(``serving_support.blob_net``: windowed intensity above a cut), so the expected mask is known exactly; the
other is the shipped 3-D lesion device (``device-lesions``) on a phantom CT with lesions."""

from __future__ import annotations

import base64
import io
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from platform_support import NODULE, make_site, npy
from test_serving_pacs import make_token

from aimd.core.hashing import sha256_file
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.models.adapters import save_torchscript
from serving_support import CT_SPEC, SEG_SPEC, aimd_server, blob_net, two_blob_ct

pytestmark = pytest.mark.integration

TASK_DEFINITION = {
    "goal": "outline lesions on CT",
    "modalities": ["CT"],
    "objects_and_outputs": "lesion masks",
    "alignment_rules": "none across modalities",
    "qc_and_traceability": "level-1 QC, review, audit trail",
}


def _phantom_case(tmp_path: Path) -> Path:
    """A de-identified phantom CT with lesions (64³) as NIfTI."""
    from aimd.imaging.io import read_volume
    from aimd.phantoms import generate_dataset

    generate_dataset(tmp_path / "phantom", cases=1, seed=5, size=64, workers=1)
    path = tmp_path / "phantom.nii.gz"
    write_nifti(read_volume(tmp_path / "phantom" / "cases" / "case_0001" / "ct"), path)
    return path


def test_prelabel_from_a_running_aimd_serve(tmp_path: Path) -> None:
    model = save_torchscript(blob_net(), tmp_path / "blob.ts", CT_SPEC, SEG_SPEC)
    vol, bright, faint = two_blob_ct()
    write_nifti(vol, tmp_path / "ct.nii.gz")
    serve_data = tmp_path / "serve"
    token = make_token(serve_data, "infer")
    site = make_site(tmp_path / "platform", None)
    settings = site.platform.settings
    admin, headers = site.as_("admin"), site.as_("intake")
    body = {
        "name": "lesions",
        "task_definition": TASK_DEFINITION,
        "label_map": {"1": "LUNG_NODULE"},
        "readers": 1,
    }
    project = site.client.post("/api/v1/projects", json=body, headers=admin).json()["id"]
    case = {"case_key": "ct-1", "image_nifti_b64": base64.b64encode((tmp_path / "ct.nii.gz").read_bytes()).decode()}
    assert site.client.post(f"/api/v1/projects/{project}/cases", json=case, headers=headers).status_code == 201
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=admin)
    user = "ann1" if site.tasks("ann1") else "ann2"
    (task,) = site.tasks(user)
    model_body = {"name": "lesion", "version": "1.0", "label_values": {"1": 1}, "parameters": {"explain": False}}

    phantom = _phantom_case(tmp_path)
    case = {"case_key": "phantom", "image_nifti_b64": base64.b64encode(phantom.read_bytes()).decode()}
    assert site.client.post(f"/api/v1/projects/{project}/cases", json=case, headers=headers).status_code == 201
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=admin)
    device_user, device_task = next((u, t) for u in ("ann1", "ann2") for t in site.tasks(u) if t["id"] != task["id"])

    args = ["--model", f"lesion={model}@1.0", "--model", "lesions=device-lesions", "--no-explain"]
    with aimd_server(args, serve_data) as (url, _proc):
        served = {**model_body, "endpoint": url}
        r = site.client.post("/api/v1/models", json=served, headers=admin)
        assert r.status_code == 409 and "serve_token" in r.json()["where"]  # no token configured
        r = site.client.post("/api/v1/models", json={**served, "endpoint": "http://"}, headers=admin)
        assert r.status_code == 422 and r.json()["where"] == "endpoint"  # a URL without a host
        settings.serve_token = SecretStr("not-a-token")
        r = site.client.post("/api/v1/models", json=served, headers=admin)
        assert r.status_code == 502 and "401" in r.json()["message"]
        settings.serve_token = SecretStr(token)
        r = site.client.post("/api/v1/models", json={**served, "served_model": "nope"}, headers=admin)
        assert r.status_code == 502 and "404" in r.json()["message"]
        r = site.client.post("/api/v1/models", json=served, headers=admin)
        assert r.status_code == 201, r.text
        assert r.json()["file_sha256"] == sha256_file(model)
        model_id = r.json()["id"]
        r = site.client.post(
            f"/api/v1/tasks/{task['id']}/prelabel", json={"model_id": model_id}, headers=site.as_(user)
        )
        assert r.status_code == 200, r.text
        assert r.json()["source"] == "lesion@1.0"
        device = {**served, "name": "device-lesions", "version": "shipped", "served_model": "lesions"}
        r = site.client.post("/api/v1/models", json=device, headers=admin)
        assert r.status_code == 201, r.text
        r = site.client.post(
            f"/api/v1/tasks/{device_task['id']}/prelabel",
            json={"model_id": r.json()["id"]},
            headers=site.as_(device_user),
        )
        assert r.status_code == 200, r.text
    (entry,) = [
        e
        for e in site.client.get("/api/v1/audit", params={"action": "prelabel"}, headers=admin).json()
        if e["detail"]["model"] == "device-lesions@shipped"
    ]
    served_mask = read_nifti(serve_data / "results" / entry["detail"]["service_result"] / "mask.nii.gz").array
    draft = site.client.get(f"/api/v1/tasks/{device_task['id']}/draft", headers=site.as_(device_user))
    device_pre = np.load(io.BytesIO(draft.content))
    assert device_pre.any() and np.array_equal(device_pre, (np.asarray(served_mask) == 1).astype(np.uint8))

    draft = site.client.get(f"/api/v1/tasks/{task['id']}/draft", headers=site.as_(user))
    assert draft.headers["x-draft-source"] == "lesion@1.0"
    pre = np.load(io.BytesIO(draft.content))
    np.testing.assert_array_equal(pre, (bright | faint).astype(np.uint8))  # both spheres are above the cut

    final = bright.astype(np.uint8)  # the annotator removes the faint sphere
    r = site.client.put(
        f"/api/v1/tasks/{task['id']}/draft",
        content=npy(final),
        headers={**site.as_(user), "If-Match": f'"{r.json()["draft_version"]}"'},
    )
    assert r.status_code == 200, r.text
    submit = {"attributes": {"1": NODULE["5"]}}
    out = site.client.post(
        f"/api/v1/tasks/{task['id']}/submit", json=submit, headers={**site.as_(user), "Idempotency-Key": "k1"}
    )
    assert out.status_code == 200, out.text
    corr = out.json()["correction"]
    assert corr["model"] == "lesion@1.0" and corr["identical_to_model"] is False
    assert corr["edited_voxels"] == int(faint.sum())
    assert corr["dice_model_to_final"] == pytest.approx(2 * bright.sum() / (2 * bright.sum() + faint.sum()))
    entry = site.client.get("/api/v1/audit", params={"action": "prelabel"}, headers=admin).json()[0]
    assert entry["detail"]["model_sha256"] == sha256_file(model) and entry["detail"]["service_result"]
    site.platform.close()
