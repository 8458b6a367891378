"""``aimd evaluate --ray``: perturbations and attack budgets as Ray tasks give the same report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from aimd.cli.evaluate import app
from aimd.core.errors import InvalidInputError
from aimd.models import make_config, train
from aimd.phantoms import generate_dataset

pytest.importorskip("ray", reason="Ray is not installed (pip install 'aimd[scale]')")
pytestmark = pytest.mark.integration

runner = CliRunner()
CLAIMS = """\
bootstrap_resamples: 200
robustness: {artefacts: [noise, motion], severities: [0.5, 1.0], claimed_severity: 1.0, sample_images: 8}
adversarial: {attacks: [fgsm, square], epsilons: [0.005, 0.01], claimed_epsilon: 0.01, sample_images: 4,
              square_iterations: 3}
"""
TIMING_KEYS = {"seconds", "cpu_seconds", "latency_ms", "images_per_s", "p50_ms", "p95_ms", "mean_ms", "duration_s"}
RUN_KEYS = {"created", "execution"}  # when, and on what, the report was made


def _same(value: Any) -> Any:
    """``value`` without timings and the run's own paths and clock times."""
    if isinstance(value, dict):
        return {k: _same(v) for k, v in value.items() if k not in TIMING_KEYS | RUN_KEYS}
    if isinstance(value, list):
        return [_same(v) for v in value]
    return value


def _evaluate(run: Path, data: Path, claims: Path, out: Path, *extra: str) -> dict[str, Any]:
    args = ["--model", str(run), "--data", str(data), "--claims", str(claims), "--out", str(out), "--no-pdf"]
    result = runner.invoke(
        app, [*args, "--only", "robustness", "--only", "adversarial", "--threads", "1", *extra, "--json"]
    )
    assert result.exit_code in (0, 1), result.output
    return json.loads((out / "report.json").read_text())


def test_evaluate_on_ray_gives_the_same_report(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    generate_dataset(data, cases=8, seed=1, size=32, workers=1)
    run = tmp_path / "run"
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="body",
            data=data,
            out=run,
            epochs=1,
            max_steps_per_epoch=3,
            batch_size=4,
            threads=1,
            seed=0,
            eval_train_cases=1,
        )
    )
    claims = tmp_path / "claims.yaml"
    claims.write_text(CLAIMS)
    single = _evaluate(run, data, claims, tmp_path / "single")
    on_ray = _evaluate(run, data, claims, tmp_path / "ray", "--ray")  # in its own network namespace, lo up
    assert _same(on_ray) == _same(single)
    evaluated = [s for s in single["sections"] if s["key"] in ("robustness", "adversarial")]
    assert [s["verdict"] != "not_evaluated" for s in evaluated] == [True, True]
    for report, how in ((single, "single process"), (on_ray, "ray (local)")):
        assert {
            s["evidence"]["measurements"]["execution"]
            for s in report["sections"]
            if s["key"] in ("robustness", "adversarial")
        } == {how}

    refused = runner.invoke(app, [*["--model", str(run), "--data", str(data)], "--ray-address", "127.0.0.1:1"])
    assert isinstance(refused.exception, InvalidInputError) and "--no-isolate-network" in str(refused.exception)
