"""000 §6.3.9 privacy protection (§5.2.9 a–b).

* §5.2.9 a — a black-box membership-inference attack (ART ``MembershipInferenceBlackBox`` on the
  per-image loss, random-forest attack model seeded through NumPy): trained on half of the cases of the
  training split (members) and of the held-out split (non-members), scored on the other half;
  its ROC AUC (0.5 = no leakage) is judged two-sided: ``|AUC − 0.5| ≤ max_membership_auc − 0.5``, since
  an attack whose scores rank members *below* non-members leaks as much as one ranking them above.
* §5.2.9 a, differential privacy (when the claim has ``dp``) — a copy of the model is fine-tuned
  with DP-SGD on the member images (:mod:`aimd.evaluation.support.dp`, opacus); the evidence gives
  the ε spent at the claimed δ, the A.10 metric of the copy next to the model's on the same test
  images, and the same membership-inference attack's AUC on the copy.
* §5.2.9 b — every internet connection attempted during the evaluation is recorded (and refused)
  by :class:`~aimd.evaluation.support.egress.EgressGuard` (TCP, UDP, DNS through Python); when the
  process runs in a network namespace without interfaces (``aimd evaluate`` does by default) no
  connection can leave at all, native runtimes included: one check. Outside a namespace the
  Python-level check is made and egress from native code is *not evaluated*, with the reason.

Example
-------
>>> PrivacyClaim().max_membership_auc
0.6
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import Field
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.evaluation.base import Characteristic, ClaimModel
from aimd.evaluation.context import EvalData, EvaluationContext
from aimd.evaluation.evidence import Evidence, Table
from aimd.evaluation.loading import load_eval_data
from aimd.evaluation.support.dp import DPClaim, dp_finetune
from aimd.evaluation.support.egress import EgressGuard, egress_scope
from aimd.evaluation.support.pixel_loss import PixelLoss, flat_targets
from aimd.evaluation.support.sampling import sample_evenly, split_by_case
from aimd.evaluation.support.scoring import case_scores, labels_from_probs, metric_name, summarize
from aimd.evaluation.support.stats import paired_difference
from aimd.metrics import roc_curve


class _LossNet(nn.Module):
    """Per-image loss of ``network`` on inputs that carry their target as extra channels."""

    def __init__(self, network: nn.Module, in_channels: int, loss: PixelLoss) -> None:
        super().__init__()
        self.network = network
        self.in_channels = in_channels
        self.loss = loss

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        n = packed.shape[0]
        logits = self.network(packed[:, : self.in_channels]).reshape(n, -1)
        self.loss.reduction = "none"
        return self.loss(logits, packed[:, self.in_channels :].reshape(n, -1)).reshape(n, 1)


class _Passthrough(nn.Module):
    """ART loss over :class:`_LossNet` outputs, which already are the per-image losses."""

    def __init__(self) -> None:
        super().__init__()
        self.reduction = "mean"

    def forward(self, losses: torch.Tensor, _labels: torch.Tensor) -> torch.Tensor:
        flat = losses.reshape(-1)
        if self.reduction == "none":
            return flat
        return flat.sum() if self.reduction == "sum" else flat.mean()


def pack(data: EvalData, channels: int, activation: str) -> NDArray[np.float32]:
    """Images with their flattened targets appended as channels, so ART sees one array per image.

    ART's black-box attack appends the labels it is given to the attack features; packing the
    segmentation target into the input and giving ART a constant label keeps the attack on the loss.
    """
    n, _c, h, w = data.images.shape
    target = flat_targets(data.targets, channels, activation).reshape(n, -1, h, w)
    return np.concatenate([data.images, target], axis=1).astype(np.float32)


def loss_estimator(
    network: nn.Module, in_channels: int, channels: int, activation: str, packed_shape: tuple[int, ...]
) -> Any:
    """ART classifier whose single output is ``network``'s per-image loss on :func:`pack`-ed inputs."""
    from art.estimators.classification import PyTorchClassifier

    net = _LossNet(network.eval(), in_channels, PixelLoss(channels, activation))
    return PyTorchClassifier(
        model=net, loss=_Passthrough(), input_shape=tuple(packed_shape), nb_classes=2, device_type="cpu"
    )


class PrivacyClaim(ClaimModel):
    """000 §5.2.9 a–b / §6.3.9: no membership leakage, no data upload, optionally a DP-SGD fine-tune."""

    max_membership_auc: float = Field(
        0.6,
        ge=0.5,
        le=1,
        description="ROC AUC of a membership-inference attack, judged two-sided: AUC within [1 − this, this]",
    )
    forbid_egress: bool = Field(True, description="no network connection during the evaluation (5.2.9 b)")
    sample_images: int = Field(64, ge=4, description="images per group (members / non-members)")
    dp: DPClaim | None = Field(None, description="DP-SGD fine-tune of a copy on the member images (5.2.9 a)")


class Privacy(Characteristic):
    """000 §6.3.9 against the §5.2.9 claim."""

    key = "privacy"
    clause = "000 §6.3.9"
    requirement = "000 §5.2.9"
    title = "Privacy protection"
    method = (
        "Run ART's black-box membership-inference attack on the per-image loss (training-split images as "
        "members, held-out images as non-members, attack trained and scored on disjoint cases) and report its "
        "ROC AUC (§5.2.9 a); when claimed, fine-tune a copy with DP-SGD (opacus, RDP accountant) on the "
        "member images and report the ε spent at δ, its metric against the model's and the attack's AUC on "
        "it (§5.2.9 a); record every network connection the evaluation attempted (§5.2.9 b)."
    )
    claim_model = PrivacyClaim

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, PrivacyClaim)
        ev = Evidence(seeds={"attack_model": ctx.seed})
        with EgressGuard() as guard:
            self._membership(ctx, claim, ev)
            ctx.predictor.predict(ctx.data.images[:1])
        attempts = [*ctx.egress_attempts, *guard.attempts]
        scope = egress_scope()
        ev.measurements.update({"egress_attempts": len(attempts), "egress_scope": scope})
        ev.tables.append(
            Table(
                title="Network connections attempted during the evaluation (§5.2.9 b)",
                columns=["address", "via", "blocked", "caller"],
                rows=attempts,
            )
        )
        if claim.forbid_egress:
            self._egress_checks(ev, attempts, scope)
        return ev

    @staticmethod
    def _egress_checks(ev: Evidence, attempts: list[dict[str, Any]], scope: dict[str, Any]) -> None:
        """One enforced check in a namespace; otherwise the Python-level check and native code not evaluated."""
        if scope["isolated"]:
            ev.check("no network egress (§5.2.9 b)", 0, len(attempts), not attempts, scope["statement"])
            return
        ev.check(
            "no network egress through Python sockets (§5.2.9 b)",
            0,
            len(attempts),
            not attempts,
            f"watched: {'; '.join(scope['watched'])}",
        )
        ev.not_evaluated(
            "no network egress from native code (§5.2.9 b)",
            0,
            f"the evaluation did not run in a network namespace (interfaces {scope['interfaces']} were "
            f"reachable), so {scope['not_watched']} could not be observed; run it in one "
            "(aimd evaluate --isolate-network, the default where unshare --net works)",
        )

    def _membership(self, ctx: EvaluationContext, claim: PrivacyClaim, ev: Evidence) -> None:
        from art.attacks.inference.membership_inference import MembershipInferenceBlackBox

        label = "membership-inference AUC, two-sided |AUC − 0.5| (§5.2.9 a)"
        bound = f"|AUC − 0.5| ≤ {round(claim.max_membership_auc - 0.5, 6)}"
        why = None
        if ctx.network is None:
            why = "the attack reads the per-image loss through the model's torch module, which this model lacks"
        elif ctx.train_data is None and not ctx.trained_run:
            why = "the model's training data is unknown (not an aimd training run with its dataset)"
        elif ctx.data.dims != 2:
            why = "the loss attack is implemented for 2-D models"
        if why is not None:
            ev.not_evaluated(label, bound, why)
            if claim.dp is not None:
                ev.not_evaluated("DP-SGD fine-tune (§5.2.9 a)", "as claimed", why)
            return
        assert ctx.network is not None
        spec_in, spec_out = ctx.predictor.input_spec, ctx.predictor.output_spec
        shape = (spec_in.channels, spec_out.channels, spec_out.activation)
        train = ctx.train_data
        if train is None:
            assert ctx.dataset_dir is not None
            train = load_eval_data(ctx.dataset_dir, spec_out.target, spec_in, splits=("train",), task=spec_out.task)
        members = sample_evenly(train, claim.sample_images)
        others = sample_evenly(ctx.data, claim.sample_images)
        packed_m = pack(members, spec_out.channels, spec_out.activation)
        packed_o = pack(others, spec_out.channels, spec_out.activation)
        estimator = loss_estimator(ctx.network, *shape, packed_m.shape[1:])
        auc, n_fit, n_test = self._attack(
            MembershipInferenceBlackBox, estimator, members, packed_m, others, packed_o, ctx.seed
        )
        leak = round(abs(auc - 0.5), 6)
        ev.measurements.update(
            {
                "membership_auc": auc,
                "membership_advantage": leak,
                "attack": "ART MembershipInferenceBlackBox (per-image loss, random forest)",
                "attack_training_items": n_fit,
                "attack_test_items": n_test,
            }
        )
        ev.check(
            label,
            bound,
            leak,
            leak <= claim.max_membership_auc - 0.5,
            f"AUC {auc}; 0.5 means the attack cannot tell members from non-members, and an AUC below 0.5 "
            "leaks as much as one above it (the attack's decision inverted)",
        )
        if claim.dp is not None:
            ctx.note("privacy: DP-SGD fine-tune (opacus)")
            dp_net, dp_info = self._dp(ctx, claim.dp, members, others)
            dp_auc, _, _ = self._attack(
                MembershipInferenceBlackBox,
                loss_estimator(dp_net, *shape, packed_m.shape[1:]),
                members,
                packed_m,
                others,
                packed_o,
                ctx.seed,
            )
            self._dp_evidence(ev, claim, dp_info, auc, dp_auc)

    @staticmethod
    def _dp(
        ctx: EvaluationContext, dp: DPClaim, members: EvalData, others: EvalData
    ) -> tuple[nn.Module, dict[str, Any]]:
        """DP-SGD fine-tune on ``members``; its accounting and the metric of both models on ``others``."""
        from aimd.models import TorchModulePredictor

        assert ctx.network is not None
        spec_in, spec_out = ctx.predictor.input_spec, ctx.predictor.output_spec
        res = dp_finetune(
            ctx.network, members, channels=spec_out.channels, activation=spec_out.activation, claim=dp, seed=ctx.seed
        )
        dp_predictor = TorchModulePredictor(res.network, spec_in, spec_out, {"model": "DP-SGD fine-tuned copy"})

        def per_case(predictor: Any) -> dict[str, float]:
            return case_scores(labels_from_probs(predictor.predict(others.images), spec_out), others)

        def summary(scores: dict[str, float]) -> dict[str, Any]:
            return summarize(list(scores.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)

        scores_base, scores_dp = per_case(ctx.predictor), per_case(dp_predictor)
        base, private = summary(scores_base), summary(scores_dp)
        drop = paired_difference(scores_base, scores_dp, seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
        info = {
            **res.summary(),
            "training_images": len(members),
            "test_images": len(others),
            "metric": metric_name(others.task),
            "metric_model": base,
            "metric_dp_model": private,
            "metric_drop": drop["estimate"],
            "metric_drop_ci": drop,
            "library": "opacus",
        }
        return res.network, info

    @staticmethod
    def _dp_evidence(ev: Evidence, claim: PrivacyClaim, info: dict[str, Any], auc: float, dp_auc: float) -> None:
        dp = claim.dp
        assert dp is not None
        name, base, private = info["metric"], info["metric_model"], info["metric_dp_model"]
        ev.seeds["dp_sgd"] = ev.seeds["attack_model"]
        ev.measurements["dp"] = {**info, "membership_auc": dp_auc}
        ev.tables.append(
            Table(
                title=f"DP-SGD fine-tune (§5.2.9 a): {name} on test images and membership-inference AUC",
                columns=["model", "epsilon", "delta", name, "ci_low", "ci_high", "membership_auc"],
                rows=[
                    {
                        "model": "as released",
                        "epsilon": None,
                        "delta": None,
                        name: base["estimate"],
                        "ci_low": base["ci_low"],
                        "ci_high": base["ci_high"],
                        "membership_auc": auc,
                    },
                    {
                        "model": f"DP-SGD copy (BatchNorm: {info['batchnorm']})",
                        "epsilon": info["epsilon"],
                        "delta": info["delta"],
                        name: private["estimate"],
                        "ci_low": private["ci_low"],
                        "ci_high": private["ci_high"],
                        "membership_auc": dp_auc,
                    },
                ],
            )
        )
        if dp.epsilon_target is not None:
            spent = info["epsilon"]
            ev.check(
                f"DP fine-tune: ε spent at δ {dp.delta} (§5.2.9 a)",
                f"≤ {dp.epsilon_target}",
                "unbounded" if spent is None else spent,
                spent is not None and spent <= dp.epsilon_target,
                f"opacus RDP accountant, {info['steps']} steps, sample rate {info['sample_rate']:.4g}, "
                f"noise multiplier {info['noise_multiplier']:.4g}; covers {info['epsilon_covers']}",
            )
        leak = round(abs(dp_auc - 0.5), 6)
        ev.check(
            "DP fine-tune: membership-inference |AUC − 0.5| (§5.2.9 a)",
            f"≤ {round(claim.max_membership_auc - 0.5, 6)}",
            leak,
            leak <= claim.max_membership_auc - 0.5,
            f"AUC {dp_auc}; attack re-trained on the DP copy's losses",
        )
        if dp.max_utility_drop is not None:
            ev.at_most(
                f"DP fine-tune: {name} drop vs the model (A.10, paired, upper CI bound)",
                dp.max_utility_drop,
                info["metric_drop_ci"],
            )

    @staticmethod
    def _attack(
        attack_cls: Any,
        estimator: Any,
        members: EvalData,
        packed_m: NDArray[np.float32],
        others: EvalData,
        packed_o: NDArray[np.float32],
        seed: int,
    ) -> tuple[float, int, int]:
        m_fit, m_test = split_by_case(members.case_ids)
        o_fit, o_test = split_by_case(others.case_ids)
        if min(len(m_fit), len(m_test), len(o_fit), len(o_test)) == 0:
            raise InvalidInputError(
                "membership inference needs at least two cases in the training and the held-out data",
                where="data",
                hint="evaluate on a dataset with more cases",
            )
        ym = np.zeros((len(packed_m), 1), np.int64)
        yo = np.zeros((len(packed_o), 1), np.int64)
        attack = attack_cls(estimator, input_type="loss", attack_model_type="rf")
        np.random.seed(seed)  # ART's random forest draws from NumPy's global generator: seed it
        attack.fit(x=packed_m[m_fit], y=ym[m_fit], test_x=packed_o[o_fit], test_y=yo[o_fit])
        p_in = attack.infer(packed_m[m_test], ym[m_test], probabilities=True).reshape(-1)
        p_out = attack.infer(packed_o[o_test], yo[o_test], probabilities=True).reshape(-1)
        truth = np.concatenate([np.ones(len(p_in)), np.zeros(len(p_out))])
        auc = roc_curve(truth, np.concatenate([p_in, p_out])).auc
        return round(float(auc), 6), len(m_fit) + len(o_fit), len(m_test) + len(o_test)


__all__ = ["Privacy", "PrivacyClaim", "loss_estimator", "pack"]
