"""The device loop against real servers: ``aimd serve`` (uvicorn process) and a real Orthanc PACS.

PACS pull (QIDO/WADO) → inference → DICOM SEG + TID 1500 SR → STOW back to Orthanc; the stored
objects pass dciodvfy and read back equal. PACS down → a clear failure and nothing stored;
``kill -9`` during asynchronous jobs → after restart every job is done or failed, none ran twice.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving_support import (
    aimd_server,
    export_models,
    free_port,
    orthanc_missing,
    orthanc_server,
    stop_process,
    two_blob_ct,
    upload_to_orthanc,
    write_ct_series,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(orthanc_missing() is not None, reason=str(orthanc_missing()))]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("serving-pacs")
    models = export_models(root / "models")
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, root / "series")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    with orthanc_server(root / "orthanc") as pacs:
        upload_to_orthanc(pacs, files)
        yield {
            "root": root,
            "models": models,
            "pacs": pacs,
            "study": str(ds.StudyInstanceUID),
            "series": str(ds.SeriesInstanceUID),
            "files": files,
        }


def make_token(data: Path, scope: str) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "serve",
            "token",
            "create",
            "--scope",
            scope,
            "--data",
            str(data),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(out.stdout)["token"])


def _env(pacs: dict) -> dict[str, str]:
    user, password = pacs["auth"]
    return {"AIMD_PACS_USER": user, "AIMD_PACS_PASSWORD": password}


def _series_in_pacs(pacs: dict, study: str, modality: str) -> list[dict]:
    r = requests.get(
        f"{pacs['dicomweb']}/studies/{study}/series", params={"Modality": modality}, auth=pacs["auth"], timeout=10
    )
    return r.json() if r.status_code == 200 and r.content else []


def test_pacs_loop_stores_seg_and_sr_that_read_back_equal(world, tmp_path):
    data = tmp_path / "data"
    token = make_token(data, "infer")
    pacs = world["pacs"]
    args = ["--model", f"blob={world['models']['onnx']}@1.0", "--pacs", str(pacs["dicomweb"])]
    with aimd_server(args, data, env=_env(pacs)) as (url, _proc):
        r = requests.post(
            f"{url}/v2/models/blob/infer",
            headers={"Authorization": f"Bearer {token}"},
            json={"study_uid": world["study"], "series_uid": world["series"]},
            timeout=300,
        )
        assert r.status_code == 200, r.text
        doc = r.json()
    assert doc["input"]["series_uid"] == world["series"] and len(doc["pacs"]["stored"]) == 2
    assert sorted(f["grade"] for f in doc["findings"]) == ["high", "review"]
    assert doc["explanation"]["method"] == "occlusion"  # ONNX: no gradients
    # read both objects back from the PACS (WADO-RS) and compare with the service's own answer
    from dicomweb_client.api import DICOMwebClient

    client = DICOMwebClient(pacs["dicomweb"])
    client._session.auth = pacs["auth"]
    seg_series = _series_in_pacs(pacs, world["study"], "SEG")
    sr_series = _series_in_pacs(pacs, world["study"], "SR")
    assert len(seg_series) == 1 and len(sr_series) == 1
    seg_uid = seg_series[0]["0020000E"]["Value"][0]
    sr_uid = sr_series[0]["0020000E"]["Value"][0]
    seg = client.retrieve_series(world["study"], seg_uid)[0]
    sr = client.retrieve_series(world["study"], sr_uid)[0]
    folder = tmp_path / "back"
    folder.mkdir()
    seg.save_as(folder / "seg.dcm")
    sr.save_as(folder / "sr.dcm")
    from aimd.imaging.io import read_volume
    from aimd.imaging.nifti_io import read_nifti
    from aimd.serving.dicom_results import read_sr_findings, seg_masks

    grid = read_volume(world["files"][0].parent)
    ai_mask = read_nifti(data / "results" / doc["id"] / "mask.nii.gz").array
    assert np.array_equal(seg_masks(folder / "seg.dcm", grid), np.asarray(ai_mask))
    back = {g["tracking_id"].split()[0]: g for g in read_sr_findings(sr)}
    for f in doc["findings"]:
        m = back[f["id"]]["measurements"]
        assert m["Volume"] == pytest.approx(f["volume_mm3"], abs=1e-3)
        assert m["Diameter"] == pytest.approx(f["longest_diameter_mm"], abs=1e-3)
        assert m["AI confidence"] == pytest.approx(f["confidence"], abs=1e-4)
        assert back[f["id"]]["grade"] == f["grade"]
    if shutil.which("dciodvfy"):
        for name in ("seg.dcm", "sr.dcm"):
            out = subprocess.run(["dciodvfy", str(folder / name)], capture_output=True, text=True)
            errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
            assert errors == [], (name, errors)


def test_pacs_down_fails_clearly_and_stores_nothing(world, tmp_path):
    data = tmp_path / "data"
    token = make_token(data, "infer")
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    args = ["--model", f"blob={world['models']['onnx']}@1.0", "--pacs", dead]
    with aimd_server(args, data) as (url, _proc):
        headers = {"Authorization": f"Bearer {token}"}
        body = {"study_uid": world["study"], "series_uid": world["series"]}
        r = requests.post(f"{url}/v2/models/blob/infer", headers=headers, json=body, timeout=60)
        assert r.status_code == 502 and "unreachable" in r.json()["message"] and r.json()["where"] == dead
        r = requests.post(
            f"{url}/v2/models/blob/infer", headers={**headers, "Prefer": "respond-async"}, json=body, timeout=60
        )
        assert r.status_code == 202
        for _ in range(300):
            job = requests.get(f"{url}{r.headers['location']}", headers=headers, timeout=10).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
    assert job["status"] == "failed" and "unreachable" in job["error"]
    assert not any((data / "results").iterdir())


def test_kill_9_leaves_every_job_done_or_failed_never_twice(world, tmp_path):
    data = tmp_path / "data"
    token = make_token(data, "infer")
    headers = {"Authorization": f"Bearer {token}", "Prefer": "respond-async"}
    from aimd.imaging.nifti_io import write_nifti

    vol, _, _ = two_blob_ct()
    write_nifti(vol, tmp_path / "ct.nii.gz")
    body = (tmp_path / "ct.nii.gz").read_bytes()
    args = ["--model", f"blob={world['models']['torchscript']}@1.0"]
    jobs = []
    with aimd_server(args, data) as (url, proc):
        for _ in range(4):
            r = requests.post(
                f"{url}/v2/models/blob/infer",
                headers=headers,
                files={"files": ("ct.nii.gz", body, "application/gzip")},
                timeout=60,
            )
            assert r.status_code == 202
            jobs.append(r.json()["job_id"])
        proc.kill()  # SIGKILL: no shutdown handler runs
        proc.wait()
    with aimd_server(args, data) as (url, _proc):
        final = {}
        for _ in range(600):
            final = {
                j: requests.get(f"{url}/v2/jobs/{j}", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
                for j in jobs
            }
            if all(v["status"] in ("done", "failed") for v in final.values()):
                break
            time.sleep(0.1)
    assert all(v["status"] in ("done", "failed") for v in final.values()), final
    assert all(v["attempts"] <= 1 for v in final.values()), final
    for v in final.values():
        if v["status"] == "failed":
            assert "not re-run" in v["error"]
        else:
            assert (data / "results" / v["result_id"] / "result.json").is_file()


def test_result_files_fetch_over_http(world, tmp_path):
    data = tmp_path / "data"
    token = make_token(data, "infer")
    args = ["--model", f"blob={world['models']['torchscript']}@1.0", "--no-explain"]
    zipped = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zipped, "w") as z:
        for f in world["files"]:
            z.write(f, f.name)
    with aimd_server(args, data) as (url, _proc):
        headers = {"Authorization": f"Bearer {token}"}
        r = requests.post(
            f"{url}/v2/models/blob/infer",
            headers={**headers, "Content-Type": "application/zip"},
            data=zipped.getvalue(),
            timeout=120,
        )
        assert r.status_code == 200, r.text
        seg = requests.get(url + r.json()["links"]["seg"], headers=headers, timeout=30)
        assert pydicom.dcmread(io.BytesIO(seg.content)).Modality == "SEG"
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert "aimd_batch_size_count" in metrics


@pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk storescu is not installed (apt-get install dcmtk)")
def test_storescu_push_runs_inference_and_stores_to_pacs(world, tmp_path):
    data = tmp_path / "data"
    token = make_token(data, "infer")
    pacs = world["pacs"]
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, tmp_path / "pushed", seed="dimse-push")
    study = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
    port = free_port()
    args = [
        "--model",
        f"blob={world['models']['onnx']}@1.0",
        "--pacs",
        str(pacs["dicomweb"]),
        "--dicom-port",
        str(port),
        "--ae-title",
        "AIMD",
        "--series-idle",
        "1",
        "--no-explain",
    ]
    with aimd_server(args, data, env=_env(pacs)) as (url, _proc):
        out = subprocess.run(
            ["storescu", "-aet", "CTSCANNER", "-aec", "AIMD", "127.0.0.1", str(port), *map(str, files)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        series = []
        for _ in range(300):
            series = requests.get(f"{url}/v2/dimse", headers={"Authorization": f"Bearer {token}"}, timeout=10).json()[
                "series"
            ]
            if series:
                break
            time.sleep(0.2)
    assert len(series) == 1 and series[0]["status"] == "done", series
    assert series[0]["instances"] == len(files) and len(series[0]["stored"]) == 2
    assert len(_series_in_pacs(pacs, study, "SEG")) == 1 and len(_series_in_pacs(pacs, study, "SR")) == 1


def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return folder / "cert.pem", folder / "key.pem"


def test_non_loopback_needs_tls_and_tls_serves_https(world, tmp_path):
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "serve",
            "--host",
            "0.0.0.0",
            "--model",
            f"blob={world['models']['onnx']}",
            "--data",
            str(tmp_path / "d0"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2 and "--host" in refused.stderr and "TLS" in refused.stderr
    cert, key = _self_signed(tmp_path)
    port = free_port()
    log = open(tmp_path / "tls.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "serve",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "d1"),
            "--model",
            f"blob={world['models']['onnx']}",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        answer = None
        for _ in range(300):
            try:
                answer = requests.get(f"https://127.0.0.1:{port}/v2/health/live", verify=str(cert), timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.3)
        assert answer is not None and answer.json() == {"live": True}
        try:  # plain HTTP on the TLS port never gets an answer
            plain = requests.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=2)
            assert plain.status_code >= 400
        except requests.RequestException:
            pass
    finally:
        stop_process(proc)
        log.close()
