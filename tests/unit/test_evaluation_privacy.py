"""000 §6.3.9 privacy: ART membership inference, DP-SGD (opacus) fine-tune, network-egress guard (5.2.9 a–b)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from test_evaluation_support import context, dice_np, disks, threshold_net

from aimd.evaluation import (
    Characteristic,
    Claims,
    EfficiencyClaim,
    EgressGuard,
    EvalData,
    Evidence,
    Privacy,
    PrivacyClaim,
    Verdict,
)
from aimd.evaluation.runner import run_characteristic, run_characteristics
from aimd.evaluation.support.dp import DPClaim, dp_finetune
from aimd.evaluation.support.egress import egress_scope, isolated_argv, isolated_env
from aimd.evaluation.support.sampling import split_by_case
from aimd.models import build_network


def test_split_by_case_keeps_cases_whole() -> None:
    first, rest = split_by_case(["a", "a", "b", "b", "c"])
    assert first.tolist() == [0, 1] and rest.tolist() == [2, 3, 4]


def test_guard_records_and_refuses_then_restores() -> None:
    real = socket.socket.connect
    with EgressGuard() as guard:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with pytest.raises(ConnectionRefusedError):
            s.connect(("198.51.100.7", 443))
        s.close()
    assert guard.attempts[0]["address"] == "198.51.100.7:443" and guard.attempts[0]["blocked"]
    assert "test_evaluation_privacy.py" in guard.attempts[0]["caller"]
    assert socket.socket.connect is real


def test_membership_attack_detects_a_loss_gap(tmp_path: Path) -> None:
    # members: high-contrast disks (low loss); non-members: low-contrast disks (high loss) — a loss-based
    # attack separates them perfectly, so its AUC must be 1; identical groups give an AUC near 0.5
    cases = {f"m{i}": "A" for i in range(6)}
    ctx = context(tmp_path, data=disks({f"t{i}": "A" for i in range(6)}, fg={"A": 0.56}, per_case=4, seed=1))
    ctx.train_data = disks(cases, fg={"A": 0.95}, per_case=4, seed=2)
    res = run_characteristic(Privacy(), ctx, Claims(privacy=PrivacyClaim(sample_images=24)))
    assert res.evidence.measurements["membership_auc"] == 1.0
    assert res.verdict == Verdict.NONCONFORM
    same = context(tmp_path, data=disks({f"t{i}": "A" for i in range(6)}, per_case=4, seed=1))
    same.train_data = disks(cases, per_case=4, seed=2)
    res2 = run_characteristic(Privacy(), same, Claims(privacy=PrivacyClaim(sample_images=24, max_membership_auc=0.8)))
    auc = res2.evidence.measurements["membership_auc"]
    assert 0.2 <= auc <= 0.8 and res2.verdict == Verdict.CONFORM, res2.reason
    again = run_characteristic(Privacy(), same, Claims(privacy=PrivacyClaim(sample_images=24)))
    assert again.evidence.measurements["membership_auc"] == auc


def test_membership_auc_below_one_half_leaks_too(tmp_path: Path) -> None:
    # the attack is fitted on cases where members have the lower loss and scored on cases where they have the
    # higher one: its AUC is 0, which tells members apart as well as an AUC of 1 (decision inverted)
    train = {**{f"m{i}": "A" for i in range(3)}, **{f"m{i}": "B" for i in range(3, 6)}}
    test = {**{f"t{i}": "B" for i in range(3)}, **{f"t{i}": "A" for i in range(3, 6)}}
    fg = {"A": 0.95, "B": 0.56}
    ctx = context(tmp_path, data=disks(test, fg=fg, per_case=4, seed=1))
    ctx.train_data = disks(train, fg=fg, per_case=4, seed=2)
    res = run_characteristic(Privacy(), ctx, Claims(privacy=PrivacyClaim(sample_images=24)))
    assert res.evidence.measurements["membership_auc"] == 0.0
    assert res.evidence.measurements["membership_advantage"] == 0.5
    assert res.verdict == Verdict.NONCONFORM and "|AUC − 0.5|" in res.reason


def test_dp_without_noise_does_not_hide_a_loss_gap(tmp_path: Path) -> None:
    # ε = ∞ (no noise): the DP copy keeps the members' lower loss, and the attack on it still separates them
    ctx = context(
        tmp_path,
        data=disks({f"t{i}": "A" for i in range(6)}, fg={"A": 0.56}, per_case=4, seed=1),
        net=_bn_threshold_3x3(),
    )
    ctx.train_data = disks({f"m{i}": "A" for i in range(6)}, fg={"A": 0.95}, per_case=4, seed=2)
    claim = PrivacyClaim(
        sample_images=24,
        max_membership_auc=0.9,
        dp=DPClaim(noise_multiplier=0.0, epsilon_target=None, epochs=1, batch_size=8, lr=0.01),
    )
    res = run_characteristic(Privacy(), ctx, Claims(privacy=claim))
    dp = res.evidence.measurements["dp"]
    assert dp["epsilon"] is None and dp["membership_auc"] >= 0.9
    assert res.verdict == Verdict.NONCONFORM


def test_membership_inference_needs_the_torch_module(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.network = None  # e.g. a TorchScript or ONNX file
    res = run_characteristic(Privacy(), ctx, Claims(privacy=PrivacyClaim()))
    checks = {c.name: c for c in res.evidence.checks}
    mi = next(c for n, c in checks.items() if n.startswith("membership-inference"))
    assert mi.outcome.value == "not_evaluated" and "torch module" in mi.detail
    # in-process, outside a network namespace: Python's sockets are watched, native code is not evaluated
    assert checks["no network egress through Python sockets (§5.2.9 b)"].passed is True
    native = checks["no network egress from native code (§5.2.9 b)"]
    assert native.outcome.value == "not_evaluated" and "network namespace" in native.detail
    assert "no network egress (§5.2.9 b)" not in checks
    assert res.verdict == Verdict.CONFORM and "not evaluated" in res.reason


def test_guard_watches_udp_and_dns_but_not_loopback() -> None:
    with EgressGuard() as guard:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(ConnectionRefusedError):
            udp.sendto(b"x", ("198.51.100.8", 53))
        udp.sendto(b"x", ("127.0.0.1", 9))  # loopback: not egress
        udp.close()
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.org", 443)
        socket.getaddrinfo("localhost", 80)
    assert [a["via"] for a in guard.attempts] == ["socket.sendto (UDP)", "socket.getaddrinfo (DNS)"]


@pytest.mark.skipif(isolated_argv(["true"]) is None, reason="unshare --net cannot make a namespace here")
def test_namespace_leaves_only_loopback_and_the_evidence_says_enforced() -> None:
    import subprocess
    import sys

    argv = isolated_argv(
        [
            sys.executable,
            "-c",
            "import json; from aimd.evaluation.support.egress import egress_scope; print(json.dumps(egress_scope()))",
        ]
    )
    assert argv is not None
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    scope = json.loads(out)
    assert scope["isolated"] is True and scope["interfaces"] == ["lo"]
    assert scope["statement"].startswith("enforced")
    assert set(egress_scope()) == set(scope)


_NO_NAMESPACE = "unshare --net cannot make a namespace here"


@pytest.mark.skipif(isolated_argv(["true"]) is None, reason=_NO_NAMESPACE)
def test_run_isolated_runs_a_function_in_a_namespace_and_passes_errors_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aimd.core.errors import AimdError
    from aimd.evaluation.support.isolated import run_isolated

    # OpenMP threads of the isolated run wait passively unless the caller chose otherwise
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert run_isolated("os:getenv", {"key": "OMP_WAIT_POLICY"}) == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert isolated_env()["OMP_WAIT_POLICY"] == "ACTIVE"
    scope = run_isolated("aimd.evaluation.support.egress:egress_scope", {})
    assert scope is not None and scope["isolated"] is True and scope["interfaces"] == ["lo"]
    assert egress_scope()["interfaces"] != ["lo"]  # the caller itself is not in the namespace
    missing = tmp_path / "none.yaml"
    with pytest.raises(AimdError) as err:
        run_isolated("aimd.evaluation.claims:load_claims", {"path": str(missing)})
    assert str(missing) in str(err.value)


class _Phones(Characteristic):
    """A characteristic whose model code tries to upload (and copes with the refusal)."""

    key = "efficiency"
    clause = "000 §6.3.4"
    requirement = "000 §5.2.4"
    title = "Model efficiency"
    method = "connects"
    claim_model = EfficiencyClaim

    def run(self, ctx: Any, claim: Any) -> Evidence:
        with contextlib.suppress(ConnectionRefusedError):
            socket.create_connection(("203.0.113.9", 80), timeout=0.1)
        return Evidence(measurements={"tried": True})


def test_egress_during_evaluation_fails_privacy(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.train_data = disks({f"m{i}": "A" for i in range(4)}, per_case=2, seed=3)
    claims = Claims(efficiency=EfficiencyClaim(), privacy=PrivacyClaim(sample_images=8, max_membership_auc=1.0))
    results = run_characteristics(
        ctx, claims, only=["efficiency", "privacy"], registry={"efficiency": _Phones(), "privacy": Privacy()}
    )
    priv = next(r for r in results if r.key == "privacy")
    assert priv.verdict == Verdict.NONCONFORM
    rows = priv.evidence.tables[0].rows
    assert [r["address"] for r in rows] == ["203.0.113.9:80"]
    assert {c.name: c.passed for c in priv.evidence.checks}[
        "no network egress through Python sockets (§5.2.9 b)"
    ] is False
    assert np.isfinite(priv.evidence.measurements["membership_auc"])


# ---------------------------------------------------------------- DP-SGD fine-tune (opacus) -----------------

# the RDP orders opacus documents as its accountant's defaults
_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """One torch thread per test process: the tests run two at a time on two cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gaussian_epsilon(sigma: float, steps: int, delta: float) -> float:
    """(ε, δ) of ``steps`` full-batch Gaussian mechanisms (sensitivity 1, std σ), written out here.

    Rényi DP of one Gaussian mechanism at order α is α / (2σ²) and composes additively; the
    conversion to (ε, δ) is ε = RDP + log((α − 1)/α) − (log δ + log α)/(α − 1), minimised over α.
    """
    best = np.inf
    for a in _ORDERS:
        rdp = steps * a / (2 * sigma**2)
        best = min(best, rdp + np.log((a - 1) / a) - (np.log(delta) + np.log(a)) / (a - 1))
    return float(best)


def _bn_threshold() -> torch.nn.Module:
    """The threshold segmenter followed by an identity BatchNorm (pre-trained statistics 0 / 1)."""
    return torch.nn.Sequential(threshold_net(), torch.nn.BatchNorm2d(1)).eval()


def _bn_threshold_3x3() -> torch.nn.Module:
    """The same threshold as a 3×3 convolution (centre weight 20, the rest 0) plus identity BatchNorm."""
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 20.0
        conv.bias.fill_(-10.0)
    return torch.nn.Sequential(conv, torch.nn.BatchNorm2d(1)).eval()


def _members(n_cases: int = 4, per_case: int = 4) -> EvalData:
    return disks({f"m{i}": "A" for i in range(n_cases)}, per_case=per_case, seed=7)


def test_dp_epsilon_matches_the_gaussian_mechanism_and_opacus_accounting() -> None:
    from opacus.accountants import RDPAccountant

    data = _members()  # 16 images
    full = dp_finetune(
        _bn_threshold(),
        data,
        channels=1,
        activation="sigmoid",
        claim=DPClaim(noise_multiplier=2.0, epsilon_target=None, epochs=3, batch_size=32),
    )
    assert full.sample_rate == 1.0 and full.steps == 3
    assert full.epsilon == pytest.approx(_gaussian_epsilon(2.0, 3, 1e-5), rel=1e-4)
    part = dp_finetune(
        _bn_threshold(),
        data,
        channels=1,
        activation="sigmoid",
        claim=DPClaim(noise_multiplier=1.3, epsilon_target=None, epochs=2, batch_size=4, delta=1e-4),
    )
    assert part.sample_rate == 0.25 and part.steps == 8
    fresh = RDPAccountant()
    fresh.history = [(1.3, 0.25, 8)]
    assert part.epsilon == pytest.approx(fresh.get_epsilon(1e-4), rel=1e-6)
    # subsampling amplifies privacy: fewer, full-batch steps with the same noise cost more ε
    assert part.epsilon < _gaussian_epsilon(1.3, 8, 1e-4)


def test_epsilon_target_sets_the_noise() -> None:
    res = dp_finetune(
        _bn_threshold(),
        _members(),
        channels=1,
        activation="sigmoid",
        claim=DPClaim(epsilon_target=3.0, noise_multiplier=None, epochs=2, batch_size=4),
    )
    assert 2.98 <= res.epsilon <= 3.0 and res.noise_multiplier > 0.5


def test_batchnorm_handling_on_the_reference_unet() -> None:
    torch.manual_seed(0)
    net = build_network("unet-small", in_channels=1, out_channels=1)
    with torch.no_grad():
        net(torch.from_numpy(_members().images))  # give the BatchNorm layers non-trivial statistics
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    data = _members(2, 3)
    frozen = dp_finetune(
        net, data, channels=1, activation="sigmoid", claim=DPClaim(noise_multiplier=1.0, epochs=1, batch_size=3, lr=0.1)
    )
    after = frozen.network.state_dict()
    bn_keys = [
        k
        for k in before
        if any(k.startswith(n + ".") for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d))
    ]
    assert frozen.batchnorm_layers == 20 and bn_keys
    assert all(torch.equal(before[k], after[k]) for k in bn_keys)  # statistics never saw the private data
    assert not torch.equal(before["output.2.weight"], after["output.2.weight"])
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # the original is untouched
    grouped = dp_finetune(
        net,
        data,
        channels=1,
        activation="sigmoid",
        claim=DPClaim(noise_multiplier=1.0, epochs=1, batch_size=3, batchnorm="group_norm"),
    )
    kinds = {type(m) for m in grouped.network.modules()}
    assert torch.nn.GroupNorm in kinds and torch.nn.BatchNorm2d not in kinds


def test_empty_poisson_batches_still_train() -> None:
    # sample rate 1/16: most Poisson batches are empty, and each still takes its noise-only step
    res = dp_finetune(
        _bn_threshold(),
        _members(),
        channels=1,
        activation="sigmoid",
        claim=DPClaim(noise_multiplier=1.0, epochs=1, batch_size=1),
    )
    assert res.steps == 16 and np.isfinite(res.epsilon)
    assert all(np.isfinite(p.detach().numpy()).all() for p in res.network.parameters())


def test_dp_section_utility_and_membership(tmp_path: Path) -> None:
    ctx = context(tmp_path, net=_bn_threshold_3x3())
    ctx.train_data = _members(6, 4)
    quiet = PrivacyClaim(
        sample_images=24,
        max_membership_auc=1.0,
        dp=DPClaim(noise_multiplier=0.0, epsilon_target=None, epochs=2, batch_size=8, lr=0.05),
    )
    res = run_characteristic(Privacy(), ctx, Claims(privacy=quiet))
    dp = res.evidence.measurements["dp"]
    owners = np.asarray(ctx.data.case_ids)
    truth = float(
        np.mean([dice_np(ctx.data.targets[owners == c], ctx.data.images[owners == c, 0] > 0.5) for c in ctx.data.cases])
    )
    assert dp["metric_model"]["estimate"] == pytest.approx(truth)
    assert dp["epsilon"] is None and dp["metric_dp_model"]["estimate"] > 0.95
    assert dp["accountant_history"] == [[0.0, 1 / 3, 6]]
    table = next(t for t in res.evidence.tables if t.title.startswith("DP-SGD"))
    assert table.rows[1]["membership_auc"] == dp["membership_auc"]
    loud = PrivacyClaim(
        sample_images=24,
        max_membership_auc=1.0,
        dp=DPClaim(noise_multiplier=5000.0, epsilon_target=None, epochs=2, batch_size=8, lr=0.05, max_utility_drop=0.1),
    )
    res2 = run_characteristic(Privacy(), ctx, Claims(privacy=loud))
    dp2 = res2.evidence.measurements["dp"]
    assert dp2["metric_dp_model"]["estimate"] < dp["metric_dp_model"]["estimate"] - 0.2
    assert dp2["metric_drop"] > 0.2 and 0 < dp2["epsilon"] < 0.5
    assert res2.verdict == Verdict.NONCONFORM and "drop vs the model" in res2.reason
    again = run_characteristic(Privacy(), ctx, Claims(privacy=loud)).evidence.measurements["dp"]
    assert again["metric_dp_model"] == dp2["metric_dp_model"] and again["membership_auc"] == dp2["membership_auc"]
    bounded = PrivacyClaim(
        sample_images=24,
        max_membership_auc=1.0,
        dp=DPClaim(noise_multiplier=0.0, epsilon_target=5.0, epochs=1, batch_size=8),
    )
    res3 = run_characteristic(Privacy(), ctx, Claims(privacy=bounded))
    assert res3.verdict == Verdict.NONCONFORM and "ε spent" in res3.reason


def _noise_set(prefix: str, n_cases: int, per_case: int, seed: int) -> EvalData:
    """Uniform-noise images with independent random masks: nothing to generalise, only to memorise."""
    rng = np.random.default_rng(seed)
    n = n_cases * per_case
    images = rng.random((n, 1, 32, 32), dtype=np.float32)
    targets = (rng.random((n, 32, 32)) < 0.5).astype(np.int64)
    owners = [f"{prefix}{i // per_case}" for i in range(n)]
    return EvalData(images, targets, owners, {c: "A" for c in dict.fromkeys(owners)}, "segmentation")


def _memoriser() -> torch.nn.Module:
    """A linear bottleneck over the whole image: enough capacity to memorise two dozen masks."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(1024, 32), torch.nn.Linear(32, 1024), torch.nn.Unflatten(1, (1, 32, 32))
    )


def test_dp_noise_lowers_the_membership_auc_of_an_overfit_model(tmp_path: Path) -> None:
    # the released model is trained without DP until it memorises its members; the DP-SGD copies are trained
    # from scratch on the same members with the same clipping, epochs and seed, once without noise and once
    # with σ = 1: only the noise separates the two copies, and only the noisy one stops leaking membership
    from aimd.evaluation.support.pixel_loss import PixelLoss, flat_targets

    members, others = _noise_set("m", 6, 4, seed=1), _noise_set("t", 6, 4, seed=2)
    net = _memoriser()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    x = torch.from_numpy(members.images)
    y = torch.from_numpy(flat_targets(members.targets, 1, "sigmoid")).reshape(len(x), -1)
    for _ in range(30):
        optimizer.zero_grad()
        PixelLoss(1, "sigmoid")(net(x).reshape(len(x), -1), y).backward()
        optimizer.step()
    ctx = context(tmp_path, data=others, net=net.eval())
    ctx.train_data = members

    def run(sigma: float) -> Any:
        dp = DPClaim(noise_multiplier=sigma, epsilon_target=None, from_scratch=True, epochs=10, batch_size=24, lr=1.0)
        return run_characteristic(Privacy(), ctx, Claims(privacy=PrivacyClaim(sample_images=24, dp=dp)))

    noisy, quiet = run(1.0), run(0.0)
    released = noisy.evidence.measurements["membership_advantage"]
    leak_noisy = abs(noisy.evidence.measurements["dp"]["membership_auc"] - 0.5)
    leak_quiet = abs(quiet.evidence.measurements["dp"]["membership_auc"] - 0.5)
    assert released >= 0.4 and leak_quiet >= 0.2  # both trained without noise: the attack tells members apart
    assert leak_noisy <= 0.1 and leak_noisy < leak_quiet - 0.1 < released
    assert (
        np.isfinite(noisy.evidence.measurements["dp"]["epsilon"])
        and quiet.evidence.measurements["dp"]["epsilon"] is None
    )
    checks = {c.name: c.passed for c in noisy.evidence.checks}
    assert checks["DP fine-tune: membership-inference |AUC − 0.5| (§5.2.9 a)"] is True
    assert checks["membership-inference AUC, two-sided |AUC − 0.5| (§5.2.9 a)"] is False
    assert noisy.verdict == Verdict.NONCONFORM  # the released model leaks, whatever its DP copy does
    quiet_checks = {c.name: c.passed for c in quiet.evidence.checks}
    assert quiet_checks["DP fine-tune: membership-inference |AUC − 0.5| (§5.2.9 a)"] is False
