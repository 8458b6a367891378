"""000 §6.3.9 privacy: ART membership inference and the network-egress guard (5.2.9 a–b)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_evaluation_support import context, disks

from aimd.evaluation import (
    Characteristic,
    Claims,
    EfficiencyClaim,
    EgressGuard,
    Evidence,
    Privacy,
    PrivacyClaim,
    Verdict,
)
from aimd.evaluation.privacy import split_by_case
from aimd.evaluation.runner import run_characteristic, run_characteristics


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
    assert res.verdict == Verdict.DOES_NOT_CONFORM
    same = context(tmp_path, data=disks({f"t{i}": "A" for i in range(6)}, per_case=4, seed=1))
    same.train_data = disks(cases, per_case=4, seed=2)
    res2 = run_characteristic(Privacy(), same, Claims(privacy=PrivacyClaim(sample_images=24,
                                                                           max_membership_auc=0.8)))
    auc = res2.evidence.measurements["membership_auc"]
    assert 0.2 <= auc <= 0.8 and res2.verdict == Verdict.CONFORMS, res2.reason
    again = run_characteristic(Privacy(), same, Claims(privacy=PrivacyClaim(sample_images=24)))
    assert again.evidence.measurements["membership_auc"] == auc


class _Phones(Characteristic):
    """A characteristic whose model code tries to upload (and copes with the refusal)."""

    key = "efficiency"
    clause = "000 §6.3.4"
    requirement = "000 §5.2.4"
    title = "Model efficiency"
    method = "connects"
    claim_model = EfficiencyClaim

    def measure(self, ctx: Any, claim: Any, claims: Claims) -> Evidence:
        with contextlib.suppress(ConnectionRefusedError):
            socket.create_connection(("203.0.113.9", 80), timeout=0.1)
        return Evidence(measurements={"tried": True})


def test_egress_during_evaluation_fails_privacy(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.train_data = disks({f"m{i}": "A" for i in range(4)}, per_case=2, seed=3)
    claims = Claims(efficiency=EfficiencyClaim(), privacy=PrivacyClaim(sample_images=8, max_membership_auc=1.0))
    results = run_characteristics(ctx, claims, only=["efficiency", "privacy"],
                                  registry={"efficiency": _Phones(), "privacy": Privacy()})
    priv = next(r for r in results if r.key == "privacy")
    assert priv.verdict == Verdict.DOES_NOT_CONFORM
    rows = priv.evidence.tables[0].rows
    assert [r["address"] for r in rows] == ["203.0.113.9:80"]
    assert np.isfinite(priv.evidence.measurements["membership_auc"])
