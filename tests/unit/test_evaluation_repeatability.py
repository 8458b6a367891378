"""000 §6.3.5 repeatability: deviations over repeats, threads and runtimes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from test_evaluation_support import context

from aimd.evaluation import Claims, Repeatability, RepeatabilityClaim, Verdict
from aimd.evaluation.characteristics.repeatability import label_disagreement, max_deviation
from aimd.evaluation.runner import run_characteristic


def test_deviation_helpers() -> None:
    assert max_deviation([np.ones(4), np.ones(4)]) == 0.0
    assert max_deviation([np.zeros(2), np.array([0.0, -0.3]), np.array([0.1, 0.0])]) == 0.3
    assert label_disagreement(np.array([1, 1, 0, 0]), np.array([1, 0, 0, 1])) == 0.5


def test_deterministic_model_conforms_across_threads_and_onnx(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    res = run_characteristic(Repeatability(), ctx, Claims(repeatability=RepeatabilityClaim(repeats=3)))
    assert res.verdict == Verdict.CONFORM, res.reason
    rows = res.evidence.tables[0].rows
    assert rows[0]["max_abs_deviation"] == 0.0
    assert any("ONNX" in r["comparison"] for r in rows)


class _NoisyNet(torch.nn.Module):
    """A network whose dropout stays active at inference: outputs differ between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 1, 1)
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.conv(x))

    def train(self, mode: bool = True) -> _NoisyNet:  # stays stochastic even in eval()
        super().train(mode)
        self.drop.train(True)
        return self


def test_stochastic_model_does_not_conform(tmp_path: Path) -> None:
    ctx = context(tmp_path, net=_NoisyNet())
    res = run_characteristic(
        Repeatability(), ctx, Claims(repeatability=RepeatabilityClaim(repeats=4, runtimes=["torch"]))
    )
    assert res.verdict == Verdict.NONCONFORM
    assert res.evidence.tables[0].rows[0]["max_abs_deviation"] > 1e-3
