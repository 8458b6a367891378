"""Findings, grades, key-feature sentences, SEG/SR round trip, upload guards, batching (no server)."""

from __future__ import annotations

import io
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import read_nifti
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.models.specs import OutputSpec
from aimd.serving.batching import BatchedPredictor, DynamicBatcher
from aimd.serving.describe import key_features
from aimd.serving.dicom_results import Algorithm, read_sr_findings, seg_masks, write_seg, write_sr
from aimd.serving.errors import BusyError, CancelledError, UploadTooLargeError
from aimd.serving.findings import GradeThresholds, extract_findings, longest_diameter_mm
from aimd.serving.inputs import UploadLimits, read_upload
from serving_support import CT_SPEC, SEG_SPEC, blob_net, two_blob_ct, write_ct_series


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aimd.phantoms import generate_dataset

    out = tmp_path_factory.mktemp("ph")
    generate_dataset(out, cases=1, seed=3, size=48, workers=1)
    return out / "cases" / "case_0001"


def test_findings_match_the_phantom_ground_truth(phantom: Path):
    import json

    from aimd.imaging.io import read_volume

    ct = read_volume(phantom / "ct")
    instances = read_nifti(phantom / "lesions.nii.gz")
    truth = json.loads((phantom / "lesions.json").read_text())["lesions"]
    labels = ct.with_array((np.asarray(instances.array) > 0).astype(np.uint8))
    probs = (np.asarray(labels.array)[:, None] * 0.95).astype(np.float32)
    spec = OutputSpec(task="segmentation", labels={1: "lesion"}, activation="sigmoid")
    found = extract_findings(labels, probs, spec, image=ct)
    assert len(found) == len(truth)
    voxel_mm3 = float(np.prod(ct.spacing))
    for lesion in truth:
        near = min(found, key=lambda f: np.linalg.norm(np.subtract(f.centroid_lps_mm, lesion["centre_lps_mm"])))
        assert near.voxels == lesion["voxel_count"]
        assert near.volume_mm3 == pytest.approx(lesion["voxel_count"] * voxel_mm3, rel=1e-4)
        assert np.linalg.norm(np.subtract(near.centroid_lps_mm, lesion["centre_lps_mm"])) < max(ct.spacing)
        assert abs(near.longest_diameter_mm - lesion["diameter_mm"]) <= 2 * max(ct.spacing)
        assert near.mean_hu == pytest.approx(lesion["hu_mean"], abs=0.1)
        assert near.location is not None and near.location.side == (
            "left" if "left" in lesion["lobe_en"] or lesion["centre_lps_mm"][0] > 0 else "right"
        )


def test_grades_follow_the_configured_thresholds():
    th = GradeThresholds(high=0.8, review=0.5)
    assert [th.grade(c) for c in (0.81, 0.8, 0.5, 0.49)] == ["high", "medium", "medium", "review"]
    with pytest.raises(ValueError, match="below the high threshold"):
        GradeThresholds(high=0.6, review=0.7)


def test_longest_diameter_of_a_sphere_is_close_to_2r():
    from serving_support import sphere

    pts = np.argwhere(sphere((21, 21, 21), (10, 10, 10), 6))[:, ::-1]
    assert longest_diameter_mm(pts, (0.5, 0.5, 0.5)) == pytest.approx(6.5, abs=0.5)


def test_key_features_in_chinese_and_english():
    vol, _, _ = two_blob_ct()
    labels = vol.with_array((np.asarray(vol.array) > -500).astype(np.uint8))
    probs = np.where(np.asarray(labels.array)[:, None] > 0, 0.95, 0.0).astype(np.float32)
    spec = OutputSpec(task="segmentation", labels={1: "lung_nodule"}, activation="sigmoid")
    f = sorted(extract_findings(labels, probs, spec, image=vol), key=lambda x: x.centroid_lps_mm[0])[0]
    text = key_features(f)
    assert text["zh"] == f"右肺中野见直径约{f.longest_diameter_mm:.0f} mm软组织密度影。"
    assert text["en"].endswith("soft-tissue density lesion in the right lung, middle zone.")


def test_seg_and_sr_round_trip_on_a_written_series(tmp_path: Path):
    vol, bright, faint = two_blob_ct()
    files = write_ct_series(vol, tmp_path / "ct")
    datasets = [pydicom.dcmread(f) for f in files]
    labels = vol.with_array((bright | faint).astype(np.uint8))
    probs = np.where(bright, 0.97, np.where(faint, 0.6, 0.0))[:, None].astype(np.float32)
    found = extract_findings(labels, probs, SEG_SPEC, image=vol)
    algo = Algorithm("blob", "1.0", "ab" * 32)
    seg = write_seg(datasets, labels, SEG_SPEC.labels, algo, result_id="r1")
    sr = write_sr(datasets, seg, found, algo, result_id="r1")
    seg.save_as(tmp_path / "seg.dcm")
    sr.save_as(tmp_path / "sr.dcm")
    assert np.array_equal(seg_masks(tmp_path / "seg.dcm", vol), np.asarray(labels.array))
    back = read_sr_findings(pydicom.dcmread(tmp_path / "sr.dcm"))
    assert sorted(g["grade"] for g in back) == ["high", "review"]
    assert sorted(g["measurements"]["Volume"] for g in back) == sorted(f.volume_mm3 for f in found)
    empty = vol.with_array(np.zeros(vol.shape, np.uint8))
    assert write_seg(datasets, empty, SEG_SPEC.labels, algo, result_id="r2") is None
    assert write_sr(datasets, None, [], algo, result_id="r2") is None  # a negative study: no TID 1500 SR


def test_zip_bomb_truncated_and_oversized_uploads(tmp_path: Path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.dcm", b"\x00" * (20 * 2**20))
    with pytest.raises(UploadTooLargeError, match="zip bomb"):
        read_upload([("bomb.zip", buf.getvalue())], UploadLimits(), tmp_path)
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, tmp_path / "ct")
    data = files[0].read_bytes()
    with pytest.raises(InvalidInputError, match="truncated") as err:
        read_upload(
            [(f.name, f.read_bytes()) for f in files[1:]] + [("cut.dcm", data[:-200])], UploadLimits(), tmp_path / "w"
        )
    assert err.value.where == "files[15] cut.dcm"
    with pytest.raises(UploadTooLargeError, match="voxels"):
        read_upload([(f.name, f.read_bytes()) for f in files], UploadLimits(max_voxels=1000), tmp_path / "v")
    ok = read_upload([(f.name, f.read_bytes()) for f in files], UploadLimits(), tmp_path / "ok")
    assert ok.volume.shape == vol.shape and len(ok.datasets) == len(files)


def _slow_predictor(delay: float) -> TorchModulePredictor:
    class Slow(TorchModulePredictor):
        calls: list[int] = []

        def _logits(self, batch):  # type: ignore[no-untyped-def]
            self.calls.append(batch.shape[0])
            time.sleep(delay)
            return super()._logits(batch)

    return Slow(blob_net(), CT_SPEC, SEG_SPEC)


def test_batcher_groups_concurrent_requests_and_keeps_rows_apart():
    base = _slow_predictor(0.05)
    batcher = DynamicBatcher(base, max_batch=8, max_wait_ms=50)
    rng = np.random.default_rng(0)
    inputs = [rng.random((1, 1, 32, 32), dtype=np.float32) for _ in range(8)]
    outs: dict[int, np.ndarray] = {}

    def call(k: int) -> None:
        outs[k] = BatchedPredictor(base, batcher).predict(inputs[k])

    threads = [threading.Thread(target=call, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    assert max(base.calls) > 1  # at least one network call served several requests
    for k in range(8):  # and every caller got its own rows
        np.testing.assert_allclose(
            outs[k], TorchModulePredictor(blob_net(), CT_SPEC, SEG_SPEC).predict(inputs[k]), atol=1e-6
        )


def test_full_queue_is_busy_and_cancelled_work_is_dropped():
    base = _slow_predictor(0.3)
    batcher = DynamicBatcher(base, max_batch=1, max_wait_ms=0, queue_size=1)
    x = np.zeros((1, 1, 32, 32), np.float32)
    first = threading.Thread(target=lambda: batcher.submit(x))
    first.start()
    time.sleep(0.05)  # the worker holds the first request; the queue (size 1) takes one more
    cancel = threading.Event()
    errors: list[Exception] = []

    def queued() -> None:
        try:
            batcher.submit(x, cancel=cancel)
        except Exception as err:
            errors.append(err)

    second = threading.Thread(target=queued)
    second.start()
    time.sleep(0.05)
    with pytest.raises(BusyError, match="queue is full"):
        batcher.submit(x)
    cancel.set()  # the client of the queued request went away
    first.join()
    second.join()
    batcher.close()
    assert isinstance(errors[0], CancelledError)
    assert base.calls == [1]  # the cancelled request never reached the network
    with pytest.raises(BusyError, match="timeout"):
        slow = DynamicBatcher(_slow_predictor(0.5), max_batch=1)
        slow.submit(x, timeout=0.1)


def test_similar_cases_find_the_same_lesion_first_and_refuse_another_model(phantom: Path, tmp_path: Path):
    import json

    import torch

    from aimd.imaging.io import read_volume
    from aimd.models.preprocess import preprocess_volume
    from aimd.models.zoo import build_network, get_entry
    from aimd.serving.registry import ModelRegistry
    from aimd.serving.similar import EmbeddingIndex

    torch.manual_seed(0)
    spec = get_entry("unet-small").input_spec
    predictor = TorchModulePredictor(
        build_network("unet-small", out_channels=1).eval(), spec.model_copy(update={"spacing_mm": None}), SEG_SPEC
    )
    weights = tmp_path / "w.pt"
    torch.save(predictor.module.state_dict(), weights)
    model = ModelRegistry().add("unet", predictor, weights, "1")
    index = EmbeddingIndex.build(predictor, model.sha256, phantom.parent.parent)
    index.save(tmp_path / "index.npz")
    loaded = EmbeddingIndex.load(tmp_path / "index.npz")
    lesions = json.loads((phantom / "lesions.json").read_text())["lesions"]
    assert len(loaded.items) == len(lesions)
    inst = np.asarray(read_nifti(phantom / "lesions.nii.gz").array)
    inputs = preprocess_volume(read_volume(phantom / "ct"), predictor.input_spec)
    answer = loaded.query_finding(model, inputs, inst == lesions[0]["instance"], k=5)
    assert answer["available"] and answer["cases"][0]["lesion_id"] == lesions[0]["id"]
    assert answer["cases"][0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    other = ModelRegistry().add("other", predictor, tmp_path / "index.npz", "2")  # a different file hash
    assert loaded.query_finding(other, inputs, inst == lesions[0]["instance"])["available"] is False


def test_auto_runtime_picks_the_faster_measured_one(tmp_path: Path):
    from aimd.serving.registry import ModelRegistry
    from serving_support import export_models

    files = export_models(tmp_path / "m")
    model = ModelRegistry().load("blob", files["onnx"], "1", runtime="auto")
    choice = model.extra["runtime_choice"]
    assert set(choice["seconds_per_batch"]) == {"onnxruntime", "openvino"}
    assert choice["chosen"] == min(choice["seconds_per_batch"], key=choice["seconds_per_batch"].get)
    assert model.runtime == choice["chosen"] and model.public()["runtime_choice"] == choice
    ts = ModelRegistry().load("blob", files["torchscript"], "1", runtime="auto")
    assert ts.runtime == "torchscript" and "runtime_choice" not in ts.extra
