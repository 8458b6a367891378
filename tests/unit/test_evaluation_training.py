"""000 §6.3.1 trainability, §6.3.2 scalability and §6.3.3 transferability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score
from test_evaluation_support import context

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.evaluation import (
    Claims,
    EvalData,
    Scalability,
    ScalabilityClaim,
    Trainability,
    TrainabilityClaim,
    TransferabilityClaim,
    Verdict,
    build_context,
    loading,
    parse_claims,
    scaling_efficiency,
)
from aimd.evaluation.characteristics.transferability import Transferability, per_class_dice
from aimd.evaluation.runner import run_characteristic
from aimd.evaluation.support.stats import paired_difference as paired_gain
from aimd.evaluation.support.training import plateaued, relative_improvement
from aimd.models import load_index, make_config, train
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
    assert res.verdict == Verdict.CONFORM, res.reason
    assert len(res.evidence.tables[0].rows) == 4
    assert res.evidence.measurements["minimum_working_configuration"]["threads"] == 1
    impossible = ScalabilityClaim(thread_counts=[1], batch_sizes=[1], runs=2, max_latency_ms=1e-6)
    assert run_characteristic(Scalability(), ctx, Claims(scalability=impossible)).verdict == Verdict.NONCONFORM


def test_scalability_names_the_configuration_and_the_missing_gpu(tmp_path: Path) -> None:
    import torch

    claim = ScalabilityClaim(
        thread_counts=[1], batch_sizes=[1, 2], runs=2, min_images_per_s=0.5, devices=["cpu", "cuda"]
    )
    res = run_characteristic(Scalability(), context(tmp_path), Claims(scalability=claim))
    met = next(c for c in res.evidence.checks if c.name.startswith("a configuration meets"))
    assert met.passed is True and str(met.measured).startswith("CPU, 1 thread(s), batch 1")
    gpu = [c for c in res.evidence.checks if c.name == "GPU configurations"]
    if torch.cuda.is_available():
        assert not gpu and any(r["device"] == "cuda" for r in res.evidence.tables[0].rows)
    else:
        assert gpu[0].outcome.value == "not_evaluated" and "no GPU" in gpu[0].detail
        assert res.verdict == Verdict.CONFORM and "GPU configurations: not evaluated" in res.reason
    assert "minimum working configuration: CPU, 1 thread(s), batch 1" in res.reason


def test_trainability_and_transferability_on_a_trained_run(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    generate_dataset(data, cases=6, seed=3, size=64, workers=1)
    run = tmp_path / "run"
    train(make_config(task="seg", model="unet-small", target="body", data=data, out=run, lr=3e-3, threads=1, **QUICK))
    ctx = build_context(run, data, tmp_path / "report", threads=1)
    claim = TrainabilityClaim(settings={**QUICK, "lr": 1e-3}, min_relative_improvement=0.0, divergence_tolerance=1.0)
    res = run_characteristic(Trainability(), ctx, Claims(trainability=claim))
    assert res.error is None, res.error
    record_file = tmp_path / "report" / "evidence" / "trainability_run" / "record.json"
    losses = [e["train_loss"] for e in json.loads(record_file.read_text(encoding="utf-8"))["epochs"]]
    assert res.evidence.measurements["relative_improvement"] == relative_improvement(losses)
    assert res.evidence.plots[0].series[0].y == losses
    assert res.verdict == (Verdict.CONFORM if losses[-1] <= losses[0] else Verdict.NONCONFORM)
    # a model that cannot learn: a step size that wrecks the weights on the first update
    wreck = TrainabilityClaim(settings={**QUICK, "lr": 10.0})
    bad = run_characteristic(Trainability(), ctx, Claims(trainability=wreck))
    assert bad.verdict == Verdict.NONCONFORM, bad.reason
    failed = {c.name for c in bad.evidence.checks if c.passed is False}
    assert failed & {
        "relative improvement of the training loss",
        "no divergence",
        "all losses finite (no NaN / divergence to infinity)",
    }

    transfer = TransferabilityClaim(
        target="organs",
        settings={**QUICK, "epochs": 1, "case_fraction": 0.5},
        lora_rank=2,
        min_metric={"lora": 0.0},
        min_gain_over_scratch={"full": -1.0},
    )
    res2 = run_characteristic(Transferability(), ctx, Claims(transferability=transfer))
    assert res2.error is None, res2.error
    rows = {r["method"]: r for r in res2.evidence.tables[0].rows}
    assert set(rows) == {"full", "lora", "scratch"}
    assert rows["lora"]["trainable_parameters"] < rows["scratch"]["trainable_parameters"]
    # every variant trained on the same half of the training cases for the same number of steps
    n_train = len(load_index(data).split_ids("train"))
    assert {r["train_cases"] for r in rows.values()} == {max(1, round(n_train * 0.5))}
    assert {r["steps"] for r in rows.values()} == {2}
    per_case = res2.evidence.measurements["per_case"]
    for method in ("full", "lora"):
        diffs = [per_case[method][c] - per_case["scratch"][c] for c in per_case["scratch"]]
        assert rows[method]["gain_over_scratch"] == pytest.approx(np.mean(diffs), abs=1e-6)
    checks = {c.name: c for c in res2.evidence.checks}
    gain = "full gain over from-scratch (non-inferiority on the paired CI)"
    assert set(checks) == {"lora fine-tune Dice", gain}
    assert checks[gain].passed is True  # the paired CI's lower bound clears −1 Dice
    assert res2.verdict == Verdict.CONFORM
    # a fine-tune that must beat from-scratch by 0.9 Dice: the paired CI's upper bound stays below it
    beat = TransferabilityClaim(
        target="organs",
        settings={**QUICK, "epochs": 1, "case_fraction": 0.5},
        methods=["full"],
        min_metric=None,
        min_gain_over_scratch=0.9,
    )
    res3 = run_characteristic(Transferability(), ctx, Claims(transferability=beat))
    assert res3.verdict == Verdict.NONCONFORM, res3.reason
    g = res3.evidence.measurements["gain_over_scratch"]["full"]
    assert (g["estimate"] if g["ci_high"] is None else g["ci_high"]) < 0.9
    classes = res2.evidence.tables[1]
    assert classes.columns == ["method", "body", "lung", "liver", "spine_bone"]


def test_paired_gain_uses_the_case_pairing() -> None:
    # the baseline varies a lot between cases but every case gains exactly 0.1: only a paired
    # bootstrap gives a zero-width interval; an unpaired one would span most of [−0.5, 0.7]
    base = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.3}
    tuned = {k: v + 0.1 for k, v in base.items()}
    g = paired_gain(tuned, base, seed=0)
    assert g["estimate"] == pytest.approx(0.1) and g["ci_low"] == pytest.approx(0.1)
    assert g["ci_high"] == pytest.approx(0.1) and g["n"] == 4
    noisy = paired_gain({"a": 0.2, "b": 0.7, "c": 0.9, "d": 0.5, "e": 0.1}, base | {"e": 0.4}, seed=0)
    diffs = np.array([0.1, 0.2, 0.0, 0.2, -0.3])
    assert noisy["estimate"] == pytest.approx(diffs.mean())
    assert noisy["ci_low"] < diffs.mean() < noisy["ci_high"] and noisy["ci_low"] >= diffs.min()


def test_per_class_dice_matches_f1() -> None:
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 3, size=(6, 8, 8))
    labels = np.where(rng.random((6, 8, 8)) < 0.3, rng.integers(0, 3, size=(6, 8, 8)), targets)
    data = EvalData(np.zeros((6, 1, 8, 8), np.float32), targets, ["a", "a", "b", "b", "c", "c"], {}, "segmentation")
    got = per_class_dice(labels, data, {0: "background", 1: "x", 2: "y"})
    assert list(got) == ["x", "y"]
    for cls, name in ((1, "x"), (2, "y")):
        expected = np.mean(
            [f1_score((targets[i : i + 2] == cls).ravel(), (labels[i : i + 2] == cls).ravel()) for i in (0, 2, 4)]
        )
        assert got[name] == pytest.approx(expected, abs=1e-6)


def test_transferability_claim_per_method_thresholds() -> None:
    claim = parse_claims(
        "transferability:\n  min_metric: {full: 0.75}\n  min_gain_over_scratch: 0.02\n", where="c.yaml"
    ).transferability
    assert claim is not None
    assert (claim.metric_floor("full"), claim.metric_floor("lora")) == (0.75, None)
    assert claim.gain_floor("full") == claim.gain_floor("lora") == 0.02
    default = TransferabilityClaim()
    assert default.target == "organs" and default.settings["case_fraction"] == 0.5
    assert (default.metric_floor("full"), default.gain_floor("lora")) == (0.65, None)
    for bad in ("min_metric: {full: 1.5}", "min_metric: 2", "min_metric: {partial: 0.5}"):
        with pytest.raises(SchemaError):
            parse_claims(f"transferability:\n  {bad}\n", where="c.yaml")


def test_reference_cache_key_follows_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    before = loading.reference_key(0)
    assert loading.reference_key(1) != before
    monkeypatch.setitem(loading.REFERENCE, "epochs", int(loading.REFERENCE["epochs"]) + 1)
    assert loading.reference_key(0) != before


def test_trainability_needs_a_run_folder(tmp_path: Path) -> None:
    res = run_characteristic(Trainability(), context(tmp_path), Claims(trainability=TrainabilityClaim()))
    assert res.verdict == Verdict.NOT_EVALUATED
    assert res.reason.startswith("not applicable: needs the model as an aimd training run")
    with pytest.raises(InvalidInputError):
        Trainability().run(context(tmp_path), TrainabilityClaim())


def test_reference_model_reuses_only_its_keyed_cache(tmp_path: Path) -> None:
    keyed = tmp_path / "evaluation-reference" / loading.reference_key(0)
    for sub, name in (("data", "dataset.json"), ("run", "run.json")):
        (keyed / sub).mkdir(parents=True)
        (keyed / sub / name).write_text("{}", encoding="utf-8")
    assert loading.reference_model(tmp_path, seed=0) == (keyed / "run", keyed / "data")
