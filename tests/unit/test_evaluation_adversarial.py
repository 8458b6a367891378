"""000 §6.3.8 adversarial security: ART FGSM/PGD (white-box) and Square Attack (black-box)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_evaluation_support import SPEC_IN, SPEC_OUT, context, dice_np, disks, threshold_net

from aimd.evaluation import AdversarialClaim, Claims, Verdict
from aimd.evaluation.characteristics.adversarial import Adversarial, physical_epsilon
from aimd.evaluation.runner import run_characteristic
from aimd.evaluation.support.blackbox import QueryOracle, margin_loss, pixel_margins, square_attack
from aimd.evaluation.support.pixel_loss import flat_targets
from aimd.models import InputSpec, Intensity, TorchModulePredictor, build_network


def test_physical_units_follow_the_window() -> None:
    spec = InputSpec(modality="CT", channels=2, intensity=Intensity(method="window", windows=((-600, 1500), (40, 400))))
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
    claim = AdversarialClaim(
        attacks=["fgsm", "pgd"],
        epsilons=[0.1, 0.35],
        claimed_epsilon=0.1,
        max_metric_drop=0.0,
        pgd_steps=5,
        sample_images=8,
    )
    res = run_characteristic(Adversarial(), ctx, Claims(adversarial=claim))
    rows = {(r["attack"], r["epsilon"]): r for r in res.evidence.tables[0].rows}
    assert rows[("fgsm", 0.1)]["Dice"] == 1.0 and rows[("fgsm", 0.35)]["Dice"] == 0.0
    assert rows[("pgd", 0.35)]["Dice"] == 0.0
    assert rows[("fgsm", 0.35)]["max_abs_perturbation"] == pytest.approx(0.35, abs=1e-6)
    assert res.verdict == Verdict.CONFORM, res.reason
    strict = AdversarialClaim(
        attacks=["fgsm"], epsilons=[0.35], claimed_epsilon=0.35, max_metric_drop=0.5, sample_images=8
    )
    assert run_characteristic(Adversarial(), ctx, Claims(adversarial=strict)).verdict == Verdict.NONCONFORM
    # every budget above the claimed one: nothing to compare, so not evaluated (never conform)
    above = AdversarialClaim(attacks=["fgsm"], epsilons=[0.35], claimed_epsilon=0.1, sample_images=8)
    res3 = run_characteristic(Adversarial(), ctx, Claims(adversarial=above))
    assert res3.verdict == Verdict.NOT_EVALUATED and "no attack budget at or below" in res3.reason


# ---------------------------------------------------------------- black-box (Square Attack) -----------------


class _Counting(TorchModulePredictor):
    """The real torch predictor, counting every image it is asked to predict."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__(net, SPEC_IN, SPEC_OUT, {"model": "counted"})
        self.images_seen = 0

    def predict(self, batch: Any) -> np.ndarray:
        self.images_seen += len(batch)
        return super().predict(batch)


def _dice(predictor: Any, images: np.ndarray, data: Any) -> float:
    """Mean per-case Dice of thresholded probabilities, from the definition (dice_np)."""
    labels = predictor.predict(images)[:, 0] >= 0.5
    owners = np.asarray(data.case_ids)
    return float(np.mean([dice_np(data.targets[owners == c], labels[owners == c]) for c in data.cases]))


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One torch thread per test process: the tests run two at a time on two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained_unet(_one_thread: None) -> torch.nn.Module:
    """unet-small (the reference architecture, BatchNorm and all) trained briefly on disk slices."""
    train = disks({f"t{i}": "A" for i in range(8)}, per_case=4, seed=5)
    torch.manual_seed(0)
    net = build_network("unet-small", in_channels=1, out_channels=1)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x = torch.from_numpy(train.images)
    y = torch.from_numpy((train.targets > 0).astype(np.float32))[:, None]
    rng = np.random.default_rng(0)
    net.train()
    for _ in range(40):
        idx = torch.from_numpy(rng.choice(len(x), 8, replace=False))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def test_pixel_margins_follow_the_labels() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.99, size=(3, 50)).astype(np.float32)
    t = (rng.random((3, 50)) > 0.5).astype(np.float32)
    m = pixel_margins(p, t, channels=1, activation="sigmoid", threshold=0.3)
    expected = np.where(t > 0, 1, -1) * (np.log(p / (1 - p)) - np.log(0.3 / 0.7))
    assert np.allclose(m, expected, atol=1e-5)
    assert ((m > 0) == ((p >= 0.3) == (t > 0))).all()
    logits = rng.normal(size=(2, 3, 20))
    soft = (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)).astype(np.float32)
    truth = rng.integers(0, 3, size=(2, 20))
    onehot = np.eye(3, dtype=np.float32)[truth].transpose(0, 2, 1).reshape(2, -1)
    ms = pixel_margins(soft.reshape(2, -1), onehot, channels=3, activation="softmax")
    for i in range(2):
        for j in range(20):
            others = [logits[i, c, j] for c in range(3) if c != truth[i, j]]
            assert ms[i, j] == pytest.approx(logits[i, truth[i, j], j] - max(others), abs=1e-4)
    assert margin_loss(soft.reshape(2, -1), onehot, channels=3, activation="softmax") == pytest.approx(
        np.maximum(ms, 0).mean(axis=1)
    )


def test_oracle_counts_each_distinct_image_once() -> None:
    pred = _Counting(threshold_net())
    oracle = QueryOracle(pred, cache_size=4)
    x = disks({"a": "A"}, per_case=3).images
    first = oracle(x)
    again = oracle(np.concatenate([x[:2], x[:2]]))
    assert pred.images_seen == 3 and oracle.queries == 3 and oracle.requests == 7
    assert np.array_equal(again[:2], first[:2]) and np.array_equal(again[2:], first[:2])
    assert np.allclose(first, pred.predict(x).reshape(3, -1))


def test_square_attack_respects_the_margin_and_counts_queries() -> None:
    # threshold model, margin 0.3 everywhere: within ε < 0.3 no label can change whatever the attack
    # does; beyond it the attack must find flips; the queries it reports are the images the model saw
    data = disks({"c0": "A", "c1": "B"}, per_case=3)
    y = flat_targets(data.targets, 1, "sigmoid")
    small_pred = _Counting(threshold_net())
    small = square_attack(small_pred, data.images, y, 0.25, iterations=20, seed=1)
    assert np.abs(small.adversarial - data.images).max() <= 0.25 + 1e-6
    assert _dice(small_pred, small.adversarial, data) == 1.0
    pred = _Counting(threshold_net())
    big = square_attack(pred, data.images, y, 0.35, iterations=20, seed=1)
    assert big.queries == pred.images_seen and big.queries <= len(data) * (20 + 2)
    assert _dice(pred, big.adversarial, data) < 0.5
    again = square_attack(_Counting(threshold_net()), data.images, y, 0.35, iterations=20, seed=1)
    other = square_attack(_Counting(threshold_net()), data.images, y, 0.35, iterations=20, seed=2)
    assert np.array_equal(again.adversarial, big.adversarial)
    assert not np.array_equal(other.adversarial, big.adversarial)


def test_square_attack_beats_random_noise_on_a_trained_unet(trained_unet: torch.nn.Module) -> None:
    pred = TorchModulePredictor(trained_unet, SPEC_IN, SPEC_OUT)
    data = disks({"c0": "A", "c1": "A", "c2": "B", "c3": "B"}, per_case=2)
    y = flat_targets(data.targets, 1, "sigmoid")
    clean = _dice(pred, data.images, data)
    assert clean > 0.85
    tiny = square_attack(pred, data.images, y, 1e-6, iterations=10).adversarial
    assert abs(_dice(pred, tiny, data) - clean) < 2e-3
    adv = square_attack(pred, data.images, y, 0.3, iterations=30).adversarial
    noise = np.clip(data.images + 0.3 * np.random.default_rng(1).choice([-1, 1], size=data.images.shape), 0, 1)
    attacked, noisy = _dice(pred, adv, data), _dice(pred, noise.astype(np.float32), data)
    assert attacked < clean - 0.2 and attacked < noisy - 0.15


def test_black_box_only_runs_without_the_torch_module(tmp_path: Path, trained_unet: torch.nn.Module) -> None:
    ctx = context(tmp_path, net=trained_unet)
    ctx.network = None  # an exported model: probabilities only
    claim = AdversarialClaim(
        attacks=["square"],
        epsilons=[0.02, 0.3],
        claimed_epsilon=0.02,
        max_metric_drop=0.05,
        square_iterations=15,
        sample_images=8,
    )
    res = run_characteristic(Adversarial(), ctx, Claims(adversarial=claim))
    assert res.verdict == Verdict.CONFORM, res.reason
    rows = {r["epsilon"]: r for r in res.evidence.tables[0].rows}
    assert rows[0.3]["kind"] == "black-box" and rows[0.3]["drop"] > 0.1
    assert 8 <= rows[0.3]["model_queries"] <= 8 * (15 + 2)
    assert res.evidence.measurements["black_box"]["model_queries_total"] == sum(
        r["model_queries"] for r in rows.values()
    )
    assert [s.name for s in res.evidence.plots[0].series] == ["square"]
    white = AdversarialClaim(attacks=["fgsm", "square"], epsilons=[0.02], sample_images=8)
    failed = run_characteristic(Adversarial(), ctx, Claims(adversarial=white))
    assert failed.verdict == Verdict.NOT_EVALUATED and "torch module" in failed.reason
