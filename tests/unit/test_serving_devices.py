"""The shipped reference devices served by name: 3-D lesion segmentation and 2-D nodule detection.

A phantom study with known lesions goes through the real app (FastAPI TestClient, real database,
real shipped weights): findings against the phantom's ground truth, findings against the returned
mask, SEG and SR read back against the findings; Grad-CAM++ localises the lesion it explains.
"""

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
from aimd.core.hashing import sha256_file
from aimd.imaging.io import read_volume
from aimd.imaging.nifti_io import read_nifti
from aimd.imaging.volume import Volume
from aimd.models.reference import read_record
from aimd.serving.app import create_app
from aimd.serving.db import ServingDB
from aimd.serving.registry import ModelRegistry
from aimd.serving.settings import ServeSettings
from serving_support import write_ct_series


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aimd.phantoms import generate_dataset

    out = tmp_path_factory.mktemp("device-phantom")
    generate_dataset(out, cases=1, seed=5, size=64, workers=1)
    return out / "cases" / "case_0001"


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    reg = ModelRegistry()
    reg.load("lesions", "device-lesions")
    reg.load("nodules", "device-nodules")
    return reg


@pytest.fixture
def client(tmp_path: Path, registry: ModelRegistry):
    settings = ServeSettings(data_dir=tmp_path / "data", max_wait_ms=2)
    db = ServingDB(settings.database)
    token = db.create_token(["infer"], name="infer")[0]
    db.engine.dispose()
    with TestClient(create_app(settings, registry)) as c:
        yield c, {"Authorization": f"Bearer {token}"}


def _zip(files: list[Path]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"ct/{f.name}")
    return buf.getvalue()


def test_shipped_devices_load_by_name_with_the_recorded_weights_hash(registry):
    for name, recipe in (("lesions", "device-lesions"), ("nodules", "device-nodules")):
        model = registry.get(name)
        assert model.path.name == f"{recipe}.pt"
        assert model.sha256 == sha256_file(model.path) == read_record(recipe)["weights_sha256"]
    assert registry.get("lesions").public()["inputs"][0]["spec"]["dims"] == 3


def test_lesion_device_finds_the_phantom_lesions_with_seg_and_sr(client, phantom, tmp_path):
    c, headers = client
    ct = read_volume(phantom / "ct")
    truth = json.loads((phantom / "lesions.json").read_text())["lesions"]
    files = write_ct_series(ct, tmp_path / "series")
    r = c.post("/v2/models/lesions/infer", headers={**headers, "content-type": "application/zip"}, content=_zip(files))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["record"]["inference"]["roi"] == [32, 48, 48]  # the whole volume, 3-D sliding window
    point = read_record("device-lesions")["operating_point"]  # at the operating point of the run record
    assert f"sigmoid ≥ {point['threshold']:g}, " in doc["record"]["postprocessing"]
    assert f"under {point['min_lesion_mm3']:g} mm³" in doc["record"]["postprocessing"]
    found = doc["findings"]
    big = [t for t in truth if t["diameter_mm"] >= 10]
    assert big and len(found) >= len(big)
    for t in big:  # every lesion of 10 mm or more is found where it is, about its size
        near = min(found, key=lambda f: np.linalg.norm(np.subtract(f["centroid_lps_mm"], t["centre_lps_mm"])))
        assert np.linalg.norm(np.subtract(near["centroid_lps_mm"], t["centre_lps_mm"])) < 3.0
        assert abs(near["longest_diameter_mm"] - t["diameter_mm"]) < 4.0
    for f in found:  # and nothing far from a true lesion
        assert min(np.linalg.norm(np.subtract(f["centroid_lps_mm"], t["centre_lps_mm"])) for t in truth) < 5.0
        assert f["grade"] in ("high", "medium", "review") and point["threshold"] <= f["confidence"] <= 1.0
    # the findings measure the returned mask
    (tmp_path / "mask.nii.gz").write_bytes(c.get(doc["links"]["mask_nifti"], headers=headers).content)
    mask = np.asarray(read_nifti(tmp_path / "mask.nii.gz").array)
    assert mask.shape == ct.shape
    voxel_mm3 = float(np.prod(ct.spacing))
    assert sum(f["volume_mm3"] for f in found) == pytest.approx(float(mask.sum()) * voxel_mm3, rel=1e-4)
    # SEG holds that mask, SR those numbers
    from aimd.serving.dicom_results import read_sr_findings, seg_masks

    (tmp_path / "seg.dcm").write_bytes(c.get(doc["links"]["seg"], headers=headers).content)
    assert np.array_equal(seg_masks(tmp_path / "seg.dcm", read_volume(tmp_path / "series")), mask)
    sr = pydicom.dcmread(io.BytesIO(c.get(doc["links"]["sr"], headers=headers).content))
    back = {g["tracking_id"].split()[0]: g for g in read_sr_findings(sr)}
    for f in found:
        m = back[f["id"]]["measurements"]
        assert m["Volume"] == pytest.approx(f["volume_mm3"], abs=1e-3)
        assert m["AI confidence"] == pytest.approx(f["confidence"], abs=1e-4)
    # the 3-D explanation lights each finding
    assert doc["explanation"]["method"] == "gradcam" and doc["explanation"]["dims"] == 3
    (tmp_path / "heat.nii.gz").write_bytes(c.get(doc["links"]["heatmap_nifti"], headers=headers).content)
    heat = np.asarray(read_nifti(tmp_path / "heat.nii.gz").array)
    assert heat[mask > 0].max() > 0.5


def test_gradcampp_localises_the_lesion_better_than_chance(phantom):
    from scipy import ndimage

    from aimd.models import load_reference
    from aimd.serving.explain3d import gradient_map_3d
    from aimd.serving.findings import components

    # the method is checked on the lesion's core (probability ≥ 0.5, the fallback point), independent of
    # the device's operating point: at the shipped 0.1 the region takes the whole lesion and the heat
    # share inside it is about 2× chance instead of 3.5× (docs/reference-devices.md)
    seg = load_reference("device-lesions")
    seg.set_operating_point(None)
    ct = read_volume(phantom / "ct")
    truth = np.asarray(read_nifti(phantom / "lesions.nii.gz").array)
    pred = seg.predict_volume(ct)
    _, channel, zyx, local = max(components(pred.labels, seg.output_spec), key=lambda c: c[3].sum())
    region = np.zeros(ct.shape, bool)
    region[zyx] = local
    heat = gradient_map_3d(seg, ct, region, channel, method="gradcampp")
    assert heat.max() == pytest.approx(1.0) and float(heat.std()) > 0.01  # not flat, not empty
    lesion = truth == truth[region].max()  # the true lesion the finding is on
    near = ndimage.binary_dilation(lesion, iterations=2)
    share = float(heat[near].sum() / heat.sum())  # heat inside the lesion (2-voxel margin)
    assert share > 3 * near.mean(), (share, near.mean())  # chance: its share of the volume


def test_nodule_device_reports_boxes_with_scores(client, phantom):
    c, headers = client
    boxes = json.loads((phantom / "dx_boxes.json").read_text())["boxes"]
    dx = (phantom / "dx.dcm").read_bytes()
    r = c.post("/v2/models/nodules/infer", headers=headers, files={"files": ("dx.dcm", dx, "application/dicom")})
    assert r.status_code == 200, r.text
    doc = r.json()
    found = doc["findings"]
    assert len(found) == len(boxes) >= 1
    spacing = pydicom.dcmread(io.BytesIO(dx)).PixelSpacing
    for f, t in zip(sorted(found, key=lambda f: f["box_px"]), sorted(boxes, key=lambda b: b["xyxy"]), strict=True):
        assert np.abs(np.subtract(f["box_px"], t["xyxy"])).max() < 3.0
        assert f["longest_diameter_mm"] == pytest.approx(t["diameter_mm"], abs=3 * float(spacing[0]))
        assert f["confidence"] >= 0.5 and f["volume_mm3"] == 0.0
    assert "seg" not in doc["files"] and doc["explanation"]["method"] == "gradcam"


def test_nodule_device_batched_and_unbatched_give_identical_findings(registry, phantom, tmp_path):
    """Several radiographs arriving together share network calls and get the findings they get alone."""
    import threading

    from aimd.serving.inputs import InputImage
    from aimd.serving.service import InferenceService

    dx = read_volume(phantom / "dx.dcm")
    rng = np.random.default_rng(3)
    images = [  # the same radiograph with different quantum noise: different inputs of one shape
        InputImage(
            Volume(
                np.clip(dx.array + rng.normal(0, 15, dx.shape), 0, 4095).astype(np.uint16),
                dx.spacing,
                dx.origin,
                dx.direction,
                modality="DX",
                metadata=dict(dx.metadata),
            ),
            "dicom",
            f"{k:064x}",
        )
        for k in range(6)
    ]
    model = registry.get("nodules")
    docs: dict[int, list[dict]] = {}
    for max_batch in (1, 16):
        settings = ServeSettings(
            data_dir=tmp_path / f"d{max_batch}", max_batch=max_batch, max_wait_ms=200, explain=False
        )
        svc = InferenceService(settings, registry)
        batcher = svc.batcher(model)
        sizes: list[int] = []
        batcher._on_batch = sizes.append
        tickets = [batcher.expect() for _ in images]  # all announced together, as concurrent clients are
        out: dict[int, dict] = {}

        def call(k: int, svc=svc, tickets=tickets, out=out) -> None:
            out[k] = svc.infer(model, images[k], actor=None, source={"upload": [f"{k}.dcm"]}, ticket=tickets[k])

        threads = [threading.Thread(target=call, args=(k,)) for k in range(len(images))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        svc.close()
        docs[max_batch] = [out[k] for k in range(len(images))]
        # one network call per request alone; batched, the requests really shared calls
        assert max(sizes) == 1 if max_batch == 1 else max(sizes) > 1, sizes
    for single, batched in zip(docs[1], docs[16], strict=True):
        assert single["findings"], "the radiographs hold nodules to compare"
        assert batched["findings"] == single["findings"]
        assert batched["record"]["detections"] == single["record"]["detections"]


def test_a_shipped_device_runs_with_the_inference_threads_asked_for():
    """``aimd serve --threads N`` reaches the torch runtime of a shipped device (not only ONNX files)."""
    import torch

    from aimd.models.adapters import load_predictor

    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            load_predictor("device-nodules", threads=threads)
            assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_serve_command_lets_openmp_threads_sleep_unless_the_caller_chose():
    """Set before torch loads: the CLI entry point and ``aimd serve``'s module load no torch."""
    import os
    import subprocess

    code = (
        "import os, sys; import aimd.cli.main; import aimd.cli.serve; "
        "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    )
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for env, expected in ((base, "PASSIVE False"), ({**base, "OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE False")):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


def test_a_shipped_device_is_versioned_by_its_weights_and_its_run_record(registry, tmp_path):
    import copy
    import json

    from aimd.serving.registry import _version_of

    model = registry.get("lesions")
    record = Path(model.predictor.metadata["run_record"])
    assert model.version == f"{model.sha256[:12]}-{sha256_file(record)[:8]}"
    changed = json.loads(record.read_text(encoding="utf-8"))
    changed["operating_point"]["threshold"] = 0.5  # same weights, another operating point
    other = tmp_path / record.name
    other.write_text(json.dumps(changed), encoding="utf-8")
    twin = copy.copy(model.predictor)
    twin._metadata = {**model.predictor.metadata, "run_record": str(other)}
    assert _version_of(twin, model.sha256) != model.version
    assert _version_of(twin, model.sha256).startswith(model.sha256[:12])
