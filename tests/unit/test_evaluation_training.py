"""000 §6.3.1 trainability, §6.3.2 scalability and §6.3.3 transferability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_evaluation_support import context

from aimd.core.errors import InvalidInputError
from aimd.evaluation import (
    Claims,
    Scalability,
    ScalabilityClaim,
    Trainability,
    TrainabilityClaim,
    TransferabilityClaim,
    Verdict,
    build_context,
    scaling_efficiency,
)
from aimd.evaluation.runner import run_characteristic
from aimd.evaluation.training_support import plateaued, relative_improvement
from aimd.evaluation.transferability import Transferability
from aimd.models import make_config, train
from aimd.phantoms import generate_dataset

QUICK = {"epochs": 2, "max_steps_per_epoch": 2, "batch_size": 4, "eval_train_cases": 1}


def test_curve_helpers() -> None:
    assert relative_improvement([4.0, 3.0, 1.0]) == 0.75
    assert plateaued([1.0, 0.8, 0.8], 2, 0.0) and not plateaued([1.0, 0.8], 2, 0.1)
    assert scaling_efficiency({1: 100.0, 2: 180.0, 4: 200.0}) == {1: 1.0, 2: 0.9, 4: 0.5}


def test_scalability_finds_the_minimum_configuration(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    claim = ScalabilityClaim(thread_counts=[1, 2], batch_sizes=[1, 4], runs=2, min_images_per_s=1.0)
    res = run_characteristic(Scalability(), ctx, Claims(scalability=claim))
    assert res.verdict == Verdict.CONFORMS, res.reason
    assert len(res.evidence.tables[0].rows) == 4
    assert res.evidence.measurements["minimum_working_configuration"]["threads"] == 1
    impossible = ScalabilityClaim(thread_counts=[1], batch_sizes=[1], runs=2, max_latency_ms=1e-6)
    assert run_characteristic(Scalability(), ctx, Claims(scalability=impossible)).verdict == \
        Verdict.DOES_NOT_CONFORM


def test_trainability_and_transferability_on_a_trained_run(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    generate_dataset(data, cases=6, seed=3, size=64, workers=1)
    run = tmp_path / "run"
    train(make_config(task="seg", model="unet-small", target="body", data=data, out=run, lr=3e-3, threads=1,
                      **QUICK))
    ctx = build_context(run, data, tmp_path / "report", threads=1)
    claim = TrainabilityClaim(settings={**QUICK, "lr": 1e-3}, min_relative_improvement=0.0,
                              divergence_tolerance=1.0)
    res = run_characteristic(Trainability(), ctx, Claims(trainability=claim))
    assert res.error is None, res.error
    record_file = tmp_path / "report" / "evidence" / "trainability_run" / "record.json"
    losses = [e["train_loss"] for e in json.loads(record_file.read_text(encoding="utf-8"))["epochs"]]
    assert res.evidence.measurements["relative_improvement"] == relative_improvement(losses)
    assert res.evidence.plots[0].series[0].y == losses
    assert res.verdict == (Verdict.CONFORMS if losses[-1] <= losses[0] else Verdict.DOES_NOT_CONFORM)

    transfer = TransferabilityClaim(target="organs", settings={**QUICK, "epochs": 1}, methods=["lora"], lora_rank=2,
                                    min_metric=0.0)
    res2 = run_characteristic(Transferability(), ctx, Claims(transferability=transfer))
    assert res2.error is None, res2.error
    rows = {r["method"]: r for r in res2.evidence.tables[0].rows}
    assert set(rows) == {"lora", "scratch"}
    assert rows["lora"]["trainable_parameters"] < rows["scratch"]["trainable_parameters"]
    assert res2.verdict == Verdict.CONFORMS


def test_trainability_needs_a_run_folder(tmp_path: Path) -> None:
    res = run_characteristic(Trainability(), context(tmp_path), Claims(trainability=TrainabilityClaim()))
    assert res.verdict == Verdict.NOT_EVALUATED and "training-run folder" in res.reason
    with pytest.raises(InvalidInputError):
        Trainability().measure(context(tmp_path), TrainabilityClaim(), Claims())
