"""Dataset inference as Ray tasks: same masks and summary as one process, worker death survived, two nodes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from aimd.cli.data import app as data_app
from aimd.cli.model import app
from aimd.core.distributed import ray_map
from aimd.core.errors import InvalidInputError
from aimd.models.config import make_config
from aimd.models.dataset_predict import SUMMARY_FILE, dataset_cases, predict_case
from aimd.models.training import train
from aimd.phantoms import generate_dataset

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'aimd[scale]')")
pytestmark = pytest.mark.integration
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this module

runner = CliRunner()


@pytest.fixture(scope="module")
def model_and_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ray_predict")
    generate_dataset(root / "train", cases=7, seed=3, size=32, sites=1, workers=1)
    generate_dataset(root / "data", cases=4, seed=9, size=32, sites=2, workers=1)
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="organs",
            data=root / "train",
            out=root / "run",
            epochs=1,
            threads=1,
            batch_size=8,
            max_steps_per_epoch=4,
            eval_train_cases=1,
        )
    )
    return root / "run", root / "data"


def _predict(model: Path, data: Path, out: Path, *extra: str) -> dict[str, Any]:
    result = runner.invoke(
        app, ["predict", str(model), "--data", str(data), "--out", str(out), "--threads", "1", *extra, "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert json.loads((out / SUMMARY_FILE).read_text()) == report
    return report


def _outputs(out: Path, report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The summary without timings and execution, and every mask file's bytes."""
    same = {k: v for k, v in report.items() if k not in ("timings", "execution")}
    masks = {row["mask"]: (out / row["mask"]).read_bytes() for row in report["cases"]}
    return same, masks


def _dies_once(marker: str, *job: Any) -> object:
    """The first task to get here creates ``marker`` and kills its own worker process."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return predict_case(*job)
    os.close(fd)
    os._exit(1)


def _node_and_result(*job: Any) -> tuple[str, object]:
    import time

    time.sleep(0.5)  # long enough that one node's single CPU is busy when the next task is placed
    return ray.get_runtime_context().get_node_id(), predict_case(*job)


def _same_case(a: Any, b: Any) -> bool:
    (sa, la), (sb, lb) = a, b
    sa, sb = ({**s, "record": {k: v for k, v in s["record"].items() if k != "seconds"}} for s in (sa, sb))
    return bool(sa == sb and np.array_equal(la.array, lb.array) and la.spacing == lb.spacing)


def test_ray_dataset_prediction_equals_single_process_and_survives_a_dead_worker(
    model_and_data: tuple[Path, Path], tmp_path: Path
) -> None:
    model, data = model_and_data
    single = _predict(model, data, tmp_path / "single")
    assert single["execution"] == "single process"
    assert single["n_cases"] == 4 and all(row["voxels_per_label"] for row in single["cases"])
    mask = nib.load(tmp_path / "single" / single["cases"][0]["mask"])
    assert mask.shape == nib.load(data / single["cases"][0]["image"]).shape  # on the input grid
    one = runner.invoke(
        app, ["predict", str(model), str(data / single["cases"][0]["image"]), "--modality", "CT", "--json"]
    )
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["voxels_per_label"] == single["cases"][0]["voxels_per_label"]
    jobs = [(str(model), str(path), "CT", 1, "onnxruntime") for _, path in dataset_cases(model, data)]
    expected = [predict_case(*job) for job in jobs]
    marker = tmp_path / "died"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # --ray uses the running instance
    try:
        on_ray = _predict(model, data, tmp_path / "ray", "--ray")
        assert on_ray["execution"] == "ray (local)"
        assert _outputs(tmp_path / "ray", on_ray) == _outputs(tmp_path / "single", single)
        got = ray_map(_dies_once, [(str(marker), *job) for job in jobs])
        assert marker.is_file()  # a worker really died, and the retry gave the same masks
        assert all(_same_case(a, b) for a, b in zip(got, expected, strict=True))
    finally:
        ray.shutdown()


def test_dataset_prediction_on_a_two_node_cluster(model_and_data: tuple[Path, Path], tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    model, data = model_and_data
    single = _predict(model, data, tmp_path / "single")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        jobs = [(str(model), str(path), "CT", 1, "onnxruntime") for _, path in dataset_cases(model, data)]
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            assert len([n for n in ray.nodes() if n["Alive"]]) == 2
            on_cluster = _predict(model, data, tmp_path / "cluster", "--ray-address", cluster.address)
            assert on_cluster["execution"] == f"ray ({cluster.address})"
            assert _outputs(tmp_path / "cluster", on_cluster) == _outputs(tmp_path / "single", single)
            placed = ray_map(_node_and_result, jobs)
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    assert len({node for node, _ in placed}) == 2


def test_predict_harmonises_a_dicom_series_first(model_and_data: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = model_and_data
    table = tmp_path / "fp.json"
    assert runner.invoke(data_app, ["fingerprint", str(data), "--out", str(table)]).exit_code == 0
    series = sorted(data.glob("cases/*/ct"))[0]
    result = runner.invoke(app, ["predict", str(model), str(series), "--harmonise", str(table), "--json"])
    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)["harmonisation"]
    assert done["applied"] and done["to"] == json.loads(table.read_text())["reference"]


def test_dataset_prediction_refuses_bad_input(model_and_data: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = model_and_data
    out = tmp_path / "o"
    for args, message in (
        ([str(data), "--data", str(data), "--out", str(out)], "either IMAGE or --data"),
        (["--data", str(data)], "--out"),
        (["--data", str(tmp_path)], "--out"),
        ([str(data / "case_0000" / "ct.nii.gz"), "--ray"], "--data DIR"),
    ):
        result = runner.invoke(app, ["predict", str(model), *args])
        assert isinstance(result.exception, InvalidInputError) and message in str(result.exception), args
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["predict", str(model), "--data", str(empty), "--out", str(out)])
    assert isinstance(result.exception, InvalidInputError)
    assert "neither dataset.json nor image files" in str(result.exception)
    assert not out.exists()  # nothing half-written
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("keep")
    result = runner.invoke(app, ["predict", str(model), "--data", str(data), "--out", str(tmp_path / "taken")])
    assert isinstance(result.exception, InvalidInputError) and (tmp_path / "taken" / "x").read_text() == "keep"
    clash = tmp_path / "clash"
    clash.mkdir()
    for name in ("a.nii.gz", "a.nii"):
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 2), np.int16), np.eye(4)), clash / name)
    result = runner.invoke(app, ["predict", str(model), "--data", str(clash), "--out", str(out), "--modality", "CT"])
    assert isinstance(result.exception, InvalidInputError) and "duplicate" in str(result.exception)
