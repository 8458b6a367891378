"""000 §6.3.6 robustness: TorchIO artefacts at graded severities, OOD probes, mixed samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_evaluation_support import context, dice_np, disks

from aimd.core.errors import InvalidInputError
from aimd.evaluation import Claims, Robustness, RobustnessClaim, Verdict, apply_artefact
from aimd.evaluation.runner import run_characteristic


@pytest.mark.parametrize("severity", [0.25, 1.0])
def test_noise_std_follows_severity(severity: float) -> None:
    x = np.full((3, 1, 32, 32), 0.5, np.float32)
    y = apply_artefact(x, "noise", severity, seed=1)
    assert abs(float((y - x).std()) - 0.1 * severity) < 0.1 * severity * 0.15


def test_blur_removes_edges_more_at_higher_severity() -> None:
    x = np.zeros((1, 1, 32, 32), np.float32)
    x[..., 16:] = 1.0
    edges = [float(np.abs(np.diff(apply_artefact(x, "blur", s, seed=0), axis=-1)).max()) for s in (0.25, 1.0)]
    assert 1.0 > edges[0] > edges[1]


def test_artefacts_are_seeded_and_bounded() -> None:
    x = np.random.default_rng(0).random((2, 1, 32, 32)).astype(np.float32)
    for name in ("bias_field", "motion", "ghosting", "spike"):
        a, b = apply_artefact(x, name, 1.0, seed=5), apply_artefact(x, name, 1.0, seed=5)
        assert np.array_equal(a, b) and a.min() >= 0 and a.max() <= 1
        assert not np.allclose(a, x), name
    with pytest.raises(InvalidInputError):
        apply_artefact(x, "noise", 1.5, seed=0)


def test_robustness_curves_ood_and_mixed(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    claim = RobustnessClaim(artefacts=["noise", "blur"], severities=[0.5, 1.0], claimed_severity=0.5,
                            max_metric_drop=0.2, ood_must_flag=["other_modality", "wrong_spacing", "corrupted",
                                                                "unpreprocessed"])
    res = run_characteristic(Robustness(), ctx, Claims(robustness=claim))
    ev = res.evidence
    assert ev.measurements["clean"]["estimate"] == 1.0
    rows = {(r["artefact"], r["severity"]): r for r in ev.tables[0].rows}
    noisy = apply_artefact(ctx.data.images, "noise", 1.0, seed=ctx.seed)
    owners = np.asarray(ctx.data.case_ids)
    expected = np.mean([dice_np(ctx.data.targets[owners == c], noisy[owners == c, 0] > 0.5)
                        for c in ctx.data.cases])
    assert rows[("noise", 1.0)]["Dice"] == pytest.approx(expected, abs=1e-6)
    ood = {r["probe"]: r["flagged"] for r in ev.tables[1].rows}
    assert ood == {"other_modality": True, "wrong_spacing": True, "corrupted": True, "unpreprocessed": True,
                   "other_body_part": False}
    assert ev.measurements["mixed_unqualified"]["metric_drop"] == 0.0
    assert res.verdict == Verdict.CONFORMS, res.reason
    assert ev.plots[0].series[0].x == [0.0, 0.5, 1.0]


def test_low_contrast_model_fails_the_claim(tmp_path: Path) -> None:
    data = disks({"c0": "A", "c1": "B"}, fg={"A": 0.55, "B": 0.55})
    ctx = context(tmp_path, data=data)
    claim = RobustnessClaim(artefacts=["noise"], severities=[0.5], claimed_severity=0.5, max_metric_drop=0.05,
                            ood_must_flag=["other_body_part"])
    res = run_characteristic(Robustness(), ctx, Claims(robustness=claim))
    assert res.verdict == Verdict.DOES_NOT_CONFORM
    failed = {c.name for c in res.evidence.checks if not c.passed}
    assert "noise: metric drop up to severity 0.5" in failed and "OOD other_body_part flagged" in failed
