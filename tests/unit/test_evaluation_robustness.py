"""000 §6.3.6 robustness: TorchIO artefacts at graded severities, OOD probes, mixed samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_evaluation_support import context, dice_np, disks

from aimd.core.errors import InvalidInputError
from aimd.evaluation import Claims, Robustness, RobustnessClaim, Verdict, apply_artefact
from aimd.evaluation.characteristics.robustness import confident_findings
from aimd.evaluation.runner import run_characteristic
from aimd.models import OutputSpec


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
    claim = RobustnessClaim(
        artefacts=["noise", "blur"],
        severities=[0.5, 1.0],
        claimed_severity=0.5,
        max_metric_drop=0.2,
        ood_must_flag=["other_modality", "wrong_spacing", "corrupted", "unpreprocessed"],
        max_confident_unqualified=1.0,
    )  # A.12.2 b recognition is tested below
    res = run_characteristic(Robustness(), ctx, Claims(robustness=claim))
    ev = res.evidence
    assert ev.measurements["clean"]["estimate"] == 1.0
    rows = {(r["artefact"], r["severity"]): r for r in ev.tables[0].rows}
    noisy = apply_artefact(ctx.data.images, "noise", 1.0, seed=ctx.seed)
    owners = np.asarray(ctx.data.case_ids)
    expected = np.mean([dice_np(ctx.data.targets[owners == c], noisy[owners == c, 0] > 0.5) for c in ctx.data.cases])
    assert rows[("noise", 1.0)]["Dice"] == pytest.approx(expected, abs=1e-6)
    ood = {r["probe"]: r["flagged"] for r in ev.tables[1].rows}
    assert ood == {
        "other_modality": True,
        "wrong_spacing": True,
        "corrupted": True,
        "unpreprocessed": True,
        "other_body_part": False,
    }
    assert ev.measurements["mixed_unqualified"]["metric_drop"] == 0.0
    assert res.verdict == Verdict.CONFORM, res.reason
    assert ev.plots[0].series[0].x == [0.0, 0.5, 1.0]


def test_low_contrast_model_fails_the_claim(tmp_path: Path) -> None:
    data = disks({"c0": "A", "c1": "B"}, fg={"A": 0.55, "B": 0.55})
    ctx = context(tmp_path, data=data)
    claim = RobustnessClaim(
        artefacts=["noise"],
        severities=[0.5],
        claimed_severity=0.5,
        max_metric_drop=0.05,
        ood_must_flag=["other_body_part"],
    )
    res = run_characteristic(Robustness(), ctx, Claims(robustness=claim))
    assert res.verdict == Verdict.NONCONFORM
    failed = {c.name for c in res.evidence.checks if not c.passed}
    assert "noise: metric drop up to severity 0.5" in failed and "OOD other_body_part flagged" in failed


def _soft_net() -> torch.nn.Module:
    """sigmoid(2·x − 1): the same decision as the threshold model (x > 0.5), never more than 73 % sure."""
    net = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        net.weight.fill_(2.0)
        net.bias.fill_(-1.0)
    return net.eval()


def _a12_2b_only(**fields: float) -> Claims:
    return Claims(robustness=RobustnessClaim(artefacts=[], ood_must_flag=[], **fields))


def test_unqualified_samples_answered_with_confidence_are_not_recognised(tmp_path: Path) -> None:
    res = run_characteristic(Robustness(), context(tmp_path), _a12_2b_only())
    assert res.verdict == Verdict.NONCONFORM, res.reason
    check = next(c for c in res.evidence.checks if c.name.startswith("unqualified samples"))
    assert check.passed is False and check.measured == 1.0  # every noise / inverted sample: a confident finding
    rows = next(t for t in res.evidence.tables if t.title.startswith("Unqualified")).rows
    assert {r["kind"] for r in rows} == {"noise", "inverted contrast"}


def test_unqualified_samples_with_low_confidence_are_recognised(tmp_path: Path) -> None:
    net = _soft_net()
    res = run_characteristic(Robustness(), context(tmp_path, net=net), _a12_2b_only())
    assert res.verdict == Verdict.CONFORM, res.reason
    assert {r["outcome"] for r in res.evidence.tables[-1].rows} == {"low confidence"}
    assert res.evidence.measurements["mixed_unqualified"]["metric_drop"] == 0.0


def test_confident_findings_by_share_of_sure_pixels() -> None:
    spec = OutputSpec(task="segmentation", labels={0: "bg", 1: "x"}, activation="softmax")
    probs = np.zeros((2, 2, 10, 10), np.float32)
    probs[:, 0] = 1.0
    probs[0, 1, :2], probs[0, 0, :2] = 0.95, 0.05  # 20 % of pixels: sure foreground
    probs[1, 1, :1, :1], probs[1, 0, :1, :1] = 0.95, 0.05  # 1 %: not above the 1 % share
    assert confident_findings(probs, spec, probability=0.9, fraction=0.01).tolist() == [True, False]
