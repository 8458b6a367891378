"""``aimd serve --workers N``: the network runs in N processes that each load the models, same answers."""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd.core.errors import IntegrityError
from aimd.imaging.nifti_io import write_nifti
from aimd.serving.app import create_app
from aimd.serving.db import ServingDB
from aimd.serving.registry import ModelRegistry
from aimd.serving.settings import ServeSettings
from serving_support import export_models, two_blob_ct


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("workers")
    vol, _, _ = two_blob_ct()
    write_nifti(vol, root / "ct.nii.gz")
    return {**export_models(root / "models"), "ct": root / "ct.nii.gz"}


def _serve(tmp: Path, model: Path, workers: int) -> tuple[TestClient, dict[str, str]]:
    registry = ModelRegistry(threads=1)
    registry.load("blob", model, "1.0", runtime="onnxruntime")
    settings = ServeSettings(data_dir=tmp / "data", workers=workers, max_wait_ms=20, explain=False)
    db = ServingDB(settings.database)
    token = db.create_token(["infer"], name="infer")[0]
    db.engine.dispose()
    return TestClient(create_app(settings, registry)), {"Authorization": f"Bearer {token}"}


def test_two_workers_load_the_models_and_answer_as_one_process(files, tmp_path):
    body = files["ct"].read_bytes()

    def infer(client: TestClient, headers: dict[str, str]) -> list[tuple[float, ...]]:
        r = client.post("/v2/models/blob/infer", headers=headers, files={"files": ("ct.nii.gz", body)})
        assert r.status_code == 200, r.text
        return sorted((f["voxels"], f["confidence"], *f["centroid_lps_mm"]) for f in r.json()["findings"])

    one, h1 = _serve(tmp_path / "one", files["onnx"], 1)
    with one:
        assert one.get("/v2/health/ready").json()["inference_workers"]["workers"] == 1
        expected = infer(one, h1)
    two, h2 = _serve(tmp_path / "two", files["onnx"], 2)
    with two:
        ready = two.get("/v2/health/ready").json()["inference_workers"]
        assert ready["workers"] == 2 and ready["models"] == ["blob@1.0"]
        assert len(ready["pids"]) == 2 and os.getpid() not in ready["pids"]  # two processes of their own
        with ThreadPoolExecutor(4) as ex:  # concurrent requests spread over both workers
            answers = list(ex.map(lambda _: infer(two, h2), range(4)))
        metrics = two.get("/metrics").text
    assert expected and all(a == expected for a in answers)
    assert 'aimd_batch_size_count{model="blob@1.0"}' in metrics


def test_a_worker_that_cannot_load_a_model_stops_the_start(files, tmp_path):
    registry = ModelRegistry(threads=1)
    model = registry.load("blob", files["torchscript"], "1.0")
    model.extra["source"] = str(tmp_path / "gone.ts")  # the file vanished between load and the workers
    settings = ServeSettings(data_dir=tmp_path / "data", workers=2)
    with (
        pytest.raises(IntegrityError, match="did not load the service's models") as err,
        TestClient(create_app(settings, registry)),
    ):
        pass
    assert err.value.where == "--workers"


@pytest.mark.parametrize(
    ("option", "value"),
    [("workers", 0), ("max_batch", 0), ("explain_method", "bogus"), ("pacs_retries", -1), ("request_timeout", 0)],
)
def test_serve_options_out_of_range_name_the_option(tmp_path, option, value):
    from aimd.cli.serve import _settings
    from aimd.core.errors import InvalidInputError

    good = _settings(tmp_path, None, workers=2, max_batch=4, explain_method="gradcampp", pacs_retries=0)
    assert (good.workers, good.explain_method, good.pacs_retries) == (2, "gradcampp", 0)
    with pytest.raises(InvalidInputError) as err:
        _settings(tmp_path, None, **{option: value})
    want = {"request_timeout": "--timeout"}.get(option, "--" + option.replace("_", "-"))
    assert err.value.where == want and err.value.exit_code == 2
