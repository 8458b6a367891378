"""The inference service in-process (FastAPI TestClient over the real app, database and models)."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.serving.app import create_app
from aimd.serving.db import ServingDB
from aimd.serving.registry import ModelRegistry
from aimd.serving.settings import ServeSettings
from serving_support import CT_SPEC, SEG_SPEC, blob_net, two_blob_ct, write_ct_series


@pytest.fixture
def served(tmp_path: Path, database_url: str):
    """The app on SQLite and on a real PostgreSQL (jobs, tokens, reviews and the audit chain)."""
    registry = ModelRegistry()
    weights = tmp_path / "blob.pt"
    net = blob_net()
    import torch

    torch.save(net.state_dict(), weights)
    registry.add("blob", TorchModulePredictor(net, CT_SPEC, SEG_SPEC), weights, "1.0")
    settings = ServeSettings(data_dir=tmp_path / "data", max_wait_ms=2, database_url=database_url)
    db = ServingDB(settings.database)
    tokens = {scope: db.create_token([scope], name=scope)[0] for scope in ("infer", "review", "admin")}
    db.engine.dispose()
    with TestClient(create_app(settings, registry)) as client:
        yield client, tokens, tmp_path


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def nifti_bytes(tmp: Path) -> bytes:
    vol, _, _ = two_blob_ct()
    write_nifti(vol, tmp / "ct.nii.gz")
    return (tmp / "ct.nii.gz").read_bytes()


def series_zip(tmp: Path) -> bytes:
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, tmp / "series")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"ct/{f.name}")
    return buf.getvalue()


def test_health_and_metadata_routes(served):
    client, tokens, _ = served
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json()["ready"] is True
    assert client.get("/v2/models").status_code == 401
    models = client.get("/v2/models", headers=auth(tokens["infer"])).json()["models"]
    assert [(m["name"], m["version"]) for m in models] == [("blob", "1.0")]
    assert len(models[0]["sha256"]) == 64
    meta = client.get("/v2/models/blob/versions/1.0", headers=auth(tokens["infer"])).json()
    assert meta["inputs"][0]["spec"]["modality"] == "CT"
    assert client.get("/v2/models/nope", headers=auth(tokens["infer"])).json()["where"] == "model"
    assert client.get("/v2/models/blob/versions/9", headers=auth(tokens["infer"])).status_code == 404
    assert "openapi" in client.get("/openapi.json").json()


def test_infer_nifti_findings_grades_and_files(served):
    client, tokens, tmp = served
    r = client.post(
        "/v2/models/blob/infer",
        headers=auth(tokens["infer"]),
        files={"files": ("ct.nii.gz", nifti_bytes(tmp), "application/gzip")},
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    findings = sorted(doc["findings"], key=lambda f: f["centroid_lps_mm"][0])
    assert len(findings) == 2
    right, left = findings  # LPS: smaller x is the patient's right
    assert right["grade"] == "high" and left["grade"] == "review"
    assert right["location"]["side"] == "right" and left["location"]["side"] == "left"
    assert left["review_recommended"] and "建议人工复核" in left["explanation"]["key_features"]["zh"]
    assert right["explanation"]["key_features"]["density"] == "soft_tissue"
    assert right["explanation"]["method"] == "gradcam"
    assert doc["explanation"]["method"] == "gradcam"
    assert doc["model"] == {"name": "blob", "version": "1.0", "sha256": doc["model"]["sha256"], "runtime": "torch"}
    assert set(doc["timings"]) >= {"inference", "findings", "explain", "total"}
    assert "seg" not in doc["files"]  # NIfTI input: no DICOM source to reference
    mask = client.get(doc["links"]["mask_nifti"], headers=auth(tokens["infer"]))
    assert mask.status_code == 200
    (tmp / "mask.nii.gz").write_bytes(mask.content)
    assert int(read_nifti(tmp / "mask.nii.gz").array.sum()) == right["voxels"] + left["voxels"]
    heat = client.get(doc["links"]["heatmap_nifti"], headers=auth(tokens["infer"]))
    (tmp / "heat.nii.gz").write_bytes(heat.content)
    h = np.asarray(read_nifti(tmp / "heat.nii.gz").array)
    _, bright, faint = two_blob_ct()
    from scipy import ndimage

    # Grad-CAM lights the spheres (the bright one most) and nothing in the air around them
    assert h[bright].max() > 0.9 and h[faint].max() > 0
    assert h[~ndimage.binary_dilation(bright | faint, iterations=2)].max() == 0
    assert client.get(doc["links"]["heatmap_png_F1"], headers=auth(tokens["infer"])).content[:4] == b"\x89PNG"


def test_infer_dicom_zip_writes_seg_and_sr(served):
    client, tokens, tmp = served
    r = client.post(
        "/v2/models/blob/infer",
        headers={**auth(tokens["infer"]), "content-type": "application/zip"},
        content=series_zip(tmp),
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert {"seg", "sr", "mask_nifti"} <= set(doc["files"])
    seg = pydicom.dcmread(io.BytesIO(client.get(doc["links"]["seg"], headers=auth(tokens["infer"])).content))
    sr = pydicom.dcmread(io.BytesIO(client.get(doc["links"]["sr"], headers=auth(tokens["infer"])).content))
    assert seg.Modality == "SEG" and sr.Modality == "SR"
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("blob", "1.0")
    assert doc["input"]["series_uid"] == seg.ReferencedSeriesSequence[0].SeriesInstanceUID


@pytest.mark.parametrize(
    ("body", "ctype", "status", "where"),
    [
        (b"hello world, not an image", "application/octet-stream", 415, "files[0] upload"),
        (b"\x00" * 128 + b"DICM" + b"\x00" * 10, "application/dicom", 422, "files[0] upload.dcm"),
    ],
)
def test_bad_uploads_are_4xx_naming_the_field(served, body, ctype, status, where):
    client, tokens, tmp = served
    r = client.post("/v2/models/blob/infer", headers={**auth(tokens["infer"]), "content-type": ctype}, content=body)
    assert r.status_code == status, r.text
    assert r.json()["where"] == where and r.json()["hint"]
    assert not any((tmp / "data" / "results").iterdir())


def test_zip_slip_and_missing_slice_are_refused(served):
    client, tokens, tmp = served
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../etc/evil.dcm", b"x")
    r = client.post(
        "/v2/models/blob/infer",
        headers={**auth(tokens["infer"]), "content-type": "application/zip"},
        content=buf.getvalue(),
    )
    assert r.status_code == 422 and "outside" in r.json()["message"]
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, tmp / "gap")
    parts = [("files", (f.name, f.read_bytes(), "application/dicom")) for k, f in enumerate(files) if k != 7]
    r = client.post("/v2/models/blob/infer", headers=auth(tokens["infer"]), files=parts)
    assert r.status_code == 422 and "SLICE_GAP" in r.json()["message"], r.text
    assert not any((tmp / "data" / "results").iterdir())


def test_scope_matrix_has_no_unauthorised_success(served):
    client, tokens, tmp = served
    routes = [
        ("GET", "/v2/models", "infer"),
        ("GET", "/v2/models/blob", "infer"),
        ("GET", "/v2/models/blob/ready", "infer"),
        ("GET", "/v2/jobs/abc", "infer"),
        ("GET", "/v2/results/abc", "infer"),
        ("POST", "/v2/results/abc/review", "review"),
        ("POST", "/v2/repository/models/blob/unload", "admin"),
        ("POST", "/v2/models/blob/infer", "infer"),
    ]
    unauthorised_ok = []
    for method, path, scope in routes:
        for who in (None, "bogus", *tokens):
            headers = {} if who is None else auth(tokens.get(who, "aimd_000000000000_bogus"))
            r = client.request(method, path, headers=headers)
            allowed = who == scope
            if not allowed and r.status_code < 400:
                unauthorised_ok.append((method, path, who, r.status_code))
            if not allowed:
                assert r.status_code in (401, 403), (method, path, who, r.status_code)
    assert unauthorised_ok == []


def test_review_records_dice_and_changed_voxels_and_audit(served):
    client, tokens, tmp = served
    doc = client.post(
        "/v2/models/blob/infer",
        headers=auth(tokens["infer"]),
        files={"files": ("ct.nii.gz", nifti_bytes(tmp), "application/gzip")},
    ).json()
    (tmp / "m.nii.gz").write_bytes(client.get(doc["links"]["mask_nifti"], headers=auth(tokens["infer"])).content)
    mask = read_nifti(tmp / "m.nii.gz")
    edited = np.asarray(mask.array).copy()
    _, _, faint = two_blob_ct()
    removed = int(edited[faint].sum())
    edited[faint] = 0  # the reviewer deletes the faint finding
    write_nifti(mask.with_array(edited), tmp / "edited.nii.gz")
    url = f"/v2/results/{doc['id']}/review"
    r = client.post(
        url,
        headers=auth(tokens["review"]),
        data={"reviewer": "Dr Li", "decision": "modified"},
        files={"mask": ("edited.nii.gz", (tmp / "edited.nii.gz").read_bytes(), "application/gzip")},
    )
    assert r.status_code == 200, r.text
    total = int((np.asarray(mask.array) > 0).sum())
    assert r.json()["changed_voxels"] == removed
    assert r.json()["dice"] == pytest.approx(2 * (total - removed) / (total + total - removed), abs=1e-6)
    ok = client.post(url, headers=auth(tokens["review"]), json={"reviewer": "Dr Li", "decision": "accept"}).json()
    assert (ok["dice"], ok["changed_voxels"]) == (1.0, 0)
    bad = client.post(url, headers=auth(tokens["review"]), json={"reviewer": "Dr Li", "decision": "maybe"})
    assert bad.status_code == 422 and bad.json()["where"] == "decision"
    assert len(client.get(f"/v2/results/{doc['id']}", headers=auth(tokens["infer"])).json()["reviews"]) == 2
    from aimd.store.audit import AuditLog

    log = AuditLog(client.app.state.service.db.engine)  # SQLite or PostgreSQL, as the service runs
    actions = [e["action"] for e in log.entries(subject=f"result:{doc['id']}")]
    assert actions == ["inference", "review", "review"]
    entry = log.entries(action="inference")[-1]["detail"]
    assert entry["model"] == "blob@1.0" and len(entry["input_sha256"]) == 64 and entry["output_sha256"]["mask_nifti"]
    assert log.verify() is None


def test_async_job_is_persisted_and_completed(served):
    client, tokens, tmp = served
    r = client.post(
        "/v2/models/blob/infer",
        headers={**auth(tokens["infer"]), "Prefer": "respond-async"},
        files={"files": ("ct.nii.gz", nifti_bytes(tmp), "application/gzip")},
    )
    assert r.status_code == 202 and r.headers["location"].startswith("/v2/jobs/")
    import time

    for _ in range(200):
        job = client.get(r.headers["location"], headers=auth(tokens["infer"])).json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert job["status"] == "done", job
    assert job["attempts"] == 1
    assert len(client.get(job["result_url"], headers=auth(tokens["infer"])).json()["findings"]) == 2


def test_metrics_count_requests(served):
    client, tokens, _ = served
    client.get("/v2/models", headers=auth(tokens["infer"]))
    text = client.get("/metrics").text
    assert 'aimd_requests_total{code="200",method="GET",route="/v2/models"}' in text
    assert "aimd_model_load_seconds" in text and "aimd_in_flight" in text


def test_pacs_reference_without_pacs_is_422(served):
    client, tokens, _ = served
    r = client.post(
        "/v2/models/blob/infer",
        headers=auth(tokens["infer"]),
        content=json.dumps({"study_uid": "1.2.3", "series_uid": "1.2.3.4"}),
    )
    assert r.status_code in (415, 422)
    r = client.post(
        "/v2/models/blob/infer", headers=auth(tokens["infer"]), json={"study_uid": "1.2.3", "series_uid": "1.2.3.4"}
    )
    assert r.status_code == 422 and r.json()["where"] == "study_uid"
    r = client.post("/v2/models/blob/infer", headers=auth(tokens["infer"]), json={"study_uid": "x; drop"})
    assert r.status_code == 422 and r.json()["where"] in ("study_uid", "series_uid")


def test_readiness_names_a_pacs_that_does_not_answer(tmp_path: Path) -> None:
    import socket

    import torch

    with socket.socket() as s:  # a port nothing listens on: the PACS is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = ModelRegistry()
    net = blob_net()
    torch.save(net.state_dict(), tmp_path / "blob.pt")
    registry.add("blob", TorchModulePredictor(net, CT_SPEC, SEG_SPEC), tmp_path / "blob.pt", "1.0")
    pacs = f"http://127.0.0.1:{port}/dicom-web"
    settings = ServeSettings(data_dir=tmp_path / "data", pacs_url=pacs, pacs_retries=5, pacs_backoff=2)
    with TestClient(create_app(settings, registry)) as client:
        ready = client.get("/v2/health/ready")
        assert client.get("/v2/health/live").status_code == 200
    body = ready.json()
    assert ready.status_code == 503 and body["ready"] is False
    assert body["dependencies"] == {"database": "up", "PACS": "down"}
    assert [(d["dependency"], d["where"]) for d in body["down"]] == [("PACS", pacs)]
    assert "PACS down" in body["error"] and "unreachable" in body["error"]  # one probe, not five repeats
