"""The shipped lesion device through the PACS loop: ``aimd serve --model lesions=device-lesions`` + Orthanc.

A phantom CT with lesions is stored in a real Orthanc; a real ``aimd serve --workers 2`` process pulls
it, runs the 3-D device (its network in the two worker processes) and stores SEG + SR back; both
read back from Orthanc equal the service's mask and findings. The demo's device stage runs the same
loop and finds the lesions of its study.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving_support import aimd_server, orthanc_missing, orthanc_server, upload_to_orthanc

pytestmark = [pytest.mark.integration, pytest.mark.skipif(orthanc_missing() is not None, reason=str(orthanc_missing()))]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aimd.phantoms import generate_dataset

    out = tmp_path_factory.mktemp("device-pacs")
    generate_dataset(out, cases=1, seed=5, size=64, workers=1)
    return out / "cases" / "case_0001"


def test_served_lesion_device_stores_seg_and_sr_that_read_back_equal(study, tmp_path):
    from dicomweb_client.api import DICOMwebClient
    from test_serving_pacs import _env, _series_in_pacs, make_token

    from aimd.imaging.io import read_volume
    from aimd.imaging.nifti_io import read_nifti
    from aimd.serving.dicom_results import read_sr_findings, seg_masks

    files = sorted(p for p in (study / "ct").iterdir() if p.is_file())
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    uids = {"study_uid": str(first.StudyInstanceUID), "series_uid": str(first.SeriesInstanceUID)}
    truth = json.loads((study / "lesions.json").read_text())["lesions"]
    data = tmp_path / "data"
    token = make_token(data, "infer")
    with orthanc_server(tmp_path / "orthanc") as pacs:
        upload_to_orthanc(pacs, files)
        args = ["--model", "lesions=device-lesions", "--pacs", str(pacs["dicomweb"]), "--workers", "2"]
        with aimd_server(args, data, env=_env(pacs)) as (url, proc):
            workers = requests.get(f"{url}/v2/health/ready", timeout=10).json()["inference_workers"]
            assert len(workers["pids"]) == 2 and proc.pid not in workers["pids"]
            assert [m.split("@")[0] for m in workers["models"]] == ["lesions"]
            r = requests.post(
                f"{url}/v2/models/lesions/infer", headers={"Authorization": f"Bearer {token}"}, json=uids, timeout=600
            )
            assert r.status_code == 200, r.text
            doc = r.json()
        assert len(doc["pacs"]["stored"]) == 2 and doc["findings"]
        for f in doc["findings"]:  # each finding lies on a true lesion
            gap = min(np.linalg.norm(np.subtract(f["centroid_lps_mm"], t["centre_lps_mm"])) for t in truth)
            assert gap < 5.0, f
        client = DICOMwebClient(pacs["dicomweb"])
        client._session.auth = pacs["auth"]
        seg_uid = _series_in_pacs(pacs, uids["study_uid"], "SEG")[0]["0020000E"]["Value"][0]
        sr_uid = _series_in_pacs(pacs, uids["study_uid"], "SR")[0]["0020000E"]["Value"][0]
        client.retrieve_series(uids["study_uid"], seg_uid)[0].save_as(tmp_path / "seg.dcm")
        sr = client.retrieve_series(uids["study_uid"], sr_uid)[0]
    mask = np.asarray(read_nifti(data / "results" / doc["id"] / "mask.nii.gz").array)
    assert mask.any() and np.array_equal(seg_masks(tmp_path / "seg.dcm", read_volume(study / "ct")), mask)
    algo = pydicom.dcmread(tmp_path / "seg.dcm").SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algo.AlgorithmName == "lesions" and algo.AlgorithmVersion == doc["model"]["version"]
    assert doc["model"]["version"].startswith(doc["model"]["sha256"][:12])  # weights hash, then run record hash
    back = {g["tracking_id"].split()[0]: g for g in read_sr_findings(sr)}
    for f in doc["findings"]:
        m = back[f["id"]]["measurements"]
        assert m["Volume"] == pytest.approx(f["volume_mm3"], abs=1e-3)
        assert m["Diameter"] == pytest.approx(f["longest_diameter_mm"], abs=1e-3)
        assert back[f["id"]]["grade"] == f["grade"]


def test_demo_device_stage_finds_the_lesions_of_its_study(tmp_path):
    from aimd.cli.demo import _device

    ctx = {"out": tmp_path, "seed": 0, "failures": []}
    result = _device(ctx)
    assert ctx["failures"] == []
    assert result["model"] == "device-lesions" and result["true_lesions"] >= 1
    assert result["findings"] >= 1 and result["pacs_stored"] == 2
    assert result["mode"] == "PACS loop"
    assert {"seg", "sr", "mask_nifti", "heatmap_nifti"} <= set(result["detail"]["files"])
