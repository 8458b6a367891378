"""Batch segmentation metrics as Ray tasks: same report as one process, worker death survived, two nodes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from aimd.cli.metrics import app
from aimd.core.distributed import ray_map
from aimd.metrics.batch import case_pairs, segment_case_noted, segmentation_batch

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'aimd[scale]')")
pytestmark = pytest.mark.integration
# the job functions below live in this test module, which Ray's workers cannot import: ship them by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

runner = CliRunner()


def _cases(root: Path, n: int = 4) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    for sub in ("ref", "pred"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        ref = np.zeros((10, 24, 24), np.uint8)
        ref[2:8, 5:15, 6:18] = 1
        ref[1:4, 16:21, 14:20] = 2
        pred = np.roll(ref, int(rng.integers(-2, 3)), axis=int(rng.integers(0, 3)))
        pred[rng.random(pred.shape) < 0.01] = 1
        for sub, arr in (("ref", ref), ("pred", pred)):
            affine = np.diag([0.7, 0.7, 2.0 + 0.5 * i, 1.0])
            nib.save(
                nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), affine), root / sub / f"case{i}.nii.gz"
            )
    return root / "ref", root / "pred"


def _dies_once(marker: str, ref: str, pred: str, labels: list[int] | None) -> object:
    """The first task to get here creates ``marker`` and kills its own worker process."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return segment_case_noted(ref, pred, labels)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


def _node_and_result(ref: str, pred: str, labels: list[int] | None) -> tuple[str, object]:
    time.sleep(0.5)  # long enough that one node's single CPU is busy when the next task is placed
    return ray.get_runtime_context().get_node_id(), segment_case_noted(ref, pred, labels)


def test_ray_report_equals_single_process_and_survives_a_dead_worker(tmp_path: Path) -> None:
    ref, pred = _cases(tmp_path)
    single = runner.invoke(app, ["seg", str(ref), str(pred), "--workers", "1", "--json"])
    assert single.exit_code == 0, single.output
    on_ray = runner.invoke(app, ["seg", str(ref), str(pred), "--workers", "2", "--ray", "--json"])
    assert on_ray.exit_code == 0, on_ray.output
    assert json.loads(on_ray.stdout) == json.loads(single.stdout)  # the report carries no timings

    jobs = [(str(r), str(p), None) for _, r, p in case_pairs(ref, pred)]
    expected = [segment_case_noted(*job) for job in jobs]
    marker = tmp_path / "died"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray_map(_dies_once, [(str(marker), *job) for job in jobs]) == expected
        assert marker.is_file()  # a worker really died, and the retry gave the same numbers
        marker.unlink()
        with pytest.raises(ray.exceptions.WorkerCrashedError):  # without retries the death is fatal
            ray_map(_dies_once, [(str(marker), *job) for job in jobs], max_retries=0)
    finally:
        ray.shutdown()


def test_two_node_cluster_runs_cases_on_both_nodes(tmp_path: Path) -> None:
    from ray.cluster_utils import Cluster

    ref, pred = _cases(tmp_path)
    pairs = case_pairs(ref, pred)
    single = segmentation_batch(pairs, None, workers=1)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        on_cluster = runner.invoke(app, ["seg", str(ref), str(pred), "--ray-address", cluster.address, "--json"])
        assert on_cluster.exit_code == 0, on_cluster.output
        assert json.loads(on_cluster.stdout) == {**single, "inputs": json.loads(on_cluster.stdout)["inputs"]}
        assert segmentation_batch(pairs, None, ray=cluster.address) == single
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            assert len([n for n in ray.nodes() if n["Alive"]]) == 2
            placed = ray_map(_node_and_result, [(str(r), str(p), None) for _, r, p in pairs])
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    assert len({node for node, _ in placed}) == 2
    assert [result for _, result in placed] == [segment_case_noted(str(r), str(p), None) for _, r, p in pairs]
