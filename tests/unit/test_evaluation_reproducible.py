"""Reproducibility (DESIGN: every stochastic step takes a seed): the same seed gives the same numbers.

A small model is trained twice with the same seed, and a small evaluation of the stochastic
characteristics (artefacts, attacks, membership inference, bootstrap CIs) runs twice on it; every
number and verdict must agree. Timings are the only fields allowed to differ.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from aimd.evaluation import build_context, parse_claims, run_characteristics
from aimd.models import load_run, make_config, train
from aimd.phantoms import generate_dataset

CLAIMS = """\
bootstrap_resamples: 200
robustness: {artefacts: [noise, motion], severities: [1.0], sample_images: 8}
adversarial: {attacks: [fgsm, square], epsilons: [0.01], claimed_epsilon: 0.01, sample_images: 4,
              square_iterations: 3}
privacy: {sample_images: 16}
generalization: {min_metric: 0.5}
"""
TIMING_KEYS = {"seconds", "cpu_seconds", "latency_ms", "images_per_s", "p50_ms", "p95_ms", "mean_ms"}


def _numbers(value: Any) -> Any:
    """``value`` without timing fields (wall-clock times differ between runs by nature)."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _evaluate(run: Path, data: Path, out: Path) -> list[dict[str, Any]]:
    ctx = build_context(run, data, out, splits=("val", "test"), threads=2, seed=0)
    results = run_characteristics(
        ctx, parse_claims(CLAIMS, where="claims"), only=["robustness", "adversarial", "privacy", "generalization"]
    )
    return [
        _numbers(
            {
                "verdict": r.verdict.value,
                "reason": r.reason,
                "evidence": r.evidence.model_dump(mode="json", exclude={"plots"}),
            }
        )
        for r in results
    ]


def test_same_seed_same_model_and_same_evaluation(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    generate_dataset(data, cases=8, seed=1, size=32, workers=2)
    weights = []
    for name in ("a", "b"):
        out = tmp_path / name
        train(
            make_config(
                task="seg",
                model="unet-small",
                target="body",
                data=data,
                out=out,
                epochs=1,
                max_steps_per_epoch=3,
                batch_size=4,
                threads=2,
                seed=0,
                eval_train_cases=1,
            )
        )
        weights.append(hashlib.sha256(load_run(out).weights.read_bytes()).hexdigest())
    assert weights[0] == weights[1]  # training: data order, initialisation and threads are seeded
    first = _evaluate(tmp_path / "a", data, tmp_path / "r1")
    second = _evaluate(tmp_path / "a", data, tmp_path / "r2")
    for one, two in zip(first, second, strict=True):
        assert one == two
    privacy = next(r for r in first if "membership_auc" in r["evidence"]["measurements"])
    assert 0.0 <= privacy["evidence"]["measurements"]["membership_auc"] <= 1.0
