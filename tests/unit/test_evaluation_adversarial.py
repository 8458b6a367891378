"""000 §6.3.8 adversarial security: ART FGSM/PGD on the threshold segmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_evaluation_support import context

from aimd.evaluation import AdversarialClaim, Claims, Verdict
from aimd.evaluation.adversarial import Adversarial, flat_targets, physical_epsilon
from aimd.evaluation.runner import run_characteristic
from aimd.models import InputSpec, Intensity


def test_physical_units_follow_the_window() -> None:
    spec = InputSpec(modality="CT", channels=2, intensity=Intensity(method="window",
                                                                    windows=((-600, 1500), (40, 400))))
    assert physical_epsilon(0.01, spec) == {"unit": "HU", "per_channel": [15.0, 4.0]}


def test_flat_targets_layouts() -> None:
    t = np.array([[[0, 2], [1, 0]]])
    onehot = flat_targets(t, 3, "softmax").reshape(1, 3, 4)
    assert onehot.argmax(axis=1).tolist() == [[0, 2, 1, 0]]
    assert flat_targets(t, 1, "sigmoid").tolist() == [[0.0, 1.0, 1.0, 0.0]]


def test_fgsm_flips_exactly_when_budget_exceeds_the_margin(tmp_path: Path) -> None:
    # disks at 0.8, background 0.2, threshold 0.5: the margin is 0.3 everywhere, so an untargeted sign
    # attack with ε < 0.3 changes no label and with ε > 0.3 flips every pixel (Dice 0); PGD steps ε/4, so
    # five steps reach the budget
    ctx = context(tmp_path)
    claim = AdversarialClaim(attacks=["fgsm", "pgd"], epsilons=[0.1, 0.35], claimed_epsilon=0.1,
                             max_metric_drop=0.0, pgd_steps=5, sample_images=8)
    res = run_characteristic(Adversarial(), ctx, Claims(adversarial=claim))
    rows = {(r["attack"], r["epsilon"]): r for r in res.evidence.tables[0].rows}
    assert rows[("fgsm", 0.1)]["Dice"] == 1.0 and rows[("fgsm", 0.35)]["Dice"] == 0.0
    assert rows[("pgd", 0.35)]["Dice"] == 0.0
    assert rows[("fgsm", 0.35)]["max_abs_perturbation"] == pytest.approx(0.35, abs=1e-6)
    assert res.verdict == Verdict.CONFORMS, res.reason
    strict = AdversarialClaim(attacks=["fgsm"], epsilons=[0.35], claimed_epsilon=0.35, max_metric_drop=0.5,
                              sample_images=8)
    assert run_characteristic(Adversarial(), ctx, Claims(adversarial=strict)).verdict == Verdict.DOES_NOT_CONFORM
