"""000 §6.3.7 generalization (§5.2.7, A.12.1 a–b) on held-out data.

* held-out test: the per-case metric with a bootstrap CI against the claimed baseline;
* A.12.1 a subgroups: cases grouped by site; one CI per group (forest plot) and a test that the
  groups do not differ (permutation test for two groups, Kruskal–Wallis for more);
* A.12.1 b stress samples: images whose target is smallest (below the claimed quantile of the
  non-empty target areas) — the metric on them against the claimed stress baseline.

Example
-------
>>> GeneralizationClaim(min_metric=0.5).alpha
0.05
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from aimd.core.atomic import atomic_file
from aimd.evaluation.base import Applicability, Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Plot, Series, Table
from aimd.evaluation.support.scoring import case_scores, metric_name, predict_labels, summarize
from aimd.evaluation.support.stats import subgroup_test
from aimd.metrics import dice


class GeneralizationClaim(ClaimModel):
    """000 §5.2.7 / §6.3.7, A.12.1 a–b."""

    min_metric: float = Field(..., ge=0, le=1, description="baseline on the held-out test set")
    subgroup_by: list[Literal["site"]] = Field(default_factory=lambda: ["site"])
    alpha: float = Field(0.05, gt=0, lt=1, description="significance level of the subgroup test")
    stress_min_metric: float | None = Field(None, ge=0, le=1, description="baseline on stress samples (small targets)")
    stress_quantile: float = Field(
        0.25, gt=0, lt=1, description="cases whose target size is below this quantile are stress"
    )


class Generalization(Characteristic):
    """000 §6.3.7 against the §5.2.7 claim."""

    key = "generalization"
    clause = "000 §6.3.7"
    requirement = "000 §5.2.7"
    title = "Generalization"
    method = (
        "Measure the per-case metric on held-out cases with a bootstrap CI against the claimed baseline; "
        "group cases by site, give each group a CI and test the groups for a difference (A.12.1 a); measure "
        "the images with the smallest targets as stress samples against the stress baseline (A.12.1 b)."
    )
    claim_model = GeneralizationClaim
    applies = Applicability(dims=frozenset({2}), note="volume models: one case per scan, no site subgroups")

    def default_claim(self) -> GeneralizationClaim:
        return GeneralizationClaim(min_metric=0.5)

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, GeneralizationClaim)
        ev = Evidence(seeds={"bootstrap": ctx.seed, "permutation": ctx.seed})
        data = ctx.data
        name = metric_name(data.task)
        labels = predict_labels(ctx.predictor, data.images)
        per_case = case_scores(labels, data)
        overall = summarize(list(per_case.values()), seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
        ev.measurements["held_out"] = overall
        ev.measurements["per_case"] = {k: round(v, 6) for k, v in per_case.items()}
        ev.at_least(f"held-out {name}", claim.min_metric, overall, f"{overall['n']} cases")
        groups: dict[str, list[float]] = {}
        for case, value in per_case.items():
            groups.setdefault(data.sites.get(case) or "unknown", []).append(value)
        rows = []
        for site in sorted(groups):
            s = summarize(groups[site], seed=ctx.seed, n_resamples=ctx.bootstrap_resamples)
            rows.append(
                {"site": site, "cases": s["n"], name: s["estimate"], "ci_low": s["ci_low"], "ci_high": s["ci_high"]}
            )
        test = subgroup_test(groups, seed=ctx.seed)
        ev.measurements["subgroup_test"] = test
        ev.tables.append(Table(title="Subgroups by site (A.12.1 a)", columns=list(rows[0]), rows=rows))
        ev.plots.append(
            Plot(
                name="subgroup_forest",
                kind="forest",
                title=f"{name} by site (95 % CI)",
                x_label=name,
                row_labels=[r["site"] for r in rows],
                reference=claim.min_metric,
                series=[
                    Series(
                        name=name,
                        x=list(map(float, range(len(rows)))),
                        y=[r[name] for r in rows],
                        low=[r["ci_low"] for r in rows],
                        high=[r["ci_high"] for r in rows],
                    )
                ],
            )
        )
        label = "no significant difference between sites (A.12.1 a)"
        if test["p_value"] is None:
            ev.not_evaluated(label, f"p ≥ {claim.alpha}", test["note"])
        elif test["p_value"] < claim.alpha:
            ev.check(label, f"p ≥ {claim.alpha}", round(test["p_value"], 6), False, str(test["test"]))
        else:
            power = test["min_p"] < claim.alpha
            ev.check(
                label,
                f"p ≥ {claim.alpha}",
                round(test["p_value"], 6),
                True if power else None,
                f"{test['test']}; the smallest p-value these group sizes "
                f"({', '.join(f'{k}: {v}' for k, v in test['sizes'].items())}) can reach is "
                f"{test['min_p']}"
                + (
                    ""
                    if power
                    else f" ≥ α {claim.alpha}: the test cannot detect any difference, so absence of one is not shown"
                ),
            )
        self._stress(ctx, claim, ev, labels, name, ctx.bootstrap_resamples)
        self._adaptation(ctx, ev, per_case, name)
        self._examples(ctx, ev, labels)
        return ev

    @staticmethod
    def _adaptation(ctx: EvaluationContext, ev: Evidence, per_case: dict[str, float], name: str) -> None:
        """An adapted run (``aimd model adapt``) against its parent on the same cases, per site (003 §5.3)."""
        import json

        info_file = ctx.run_dir / "run.json" if ctx.run_dir else None
        if info_file is None or not info_file.is_file():
            return
        adaptation = json.loads(info_file.read_text(encoding="utf-8")).get("adaptation")
        if not adaptation:
            return
        from aimd.models import load_run

        parent = load_run(adaptation["parent_run"]).predictor()
        before = case_scores(predict_labels(parent, ctx.data.images), ctx.data)
        groups: dict[str, list[str]] = {}
        for case in per_case:
            groups.setdefault(ctx.data.sites.get(case) or "unknown", []).append(case)
        rows = []
        for site in sorted(groups):
            cases = groups[site]
            gain = summarize(
                [per_case[c] - before[c] for c in cases], seed=ctx.seed, n_resamples=ctx.bootstrap_resamples
            )
            rows.append(
                {
                    "site": site,
                    "cases": len(cases),
                    f"parent {name}": round(float(np.mean([before[c] for c in cases])), 6),
                    f"adapted {name}": round(float(np.mean([per_case[c] for c in cases])), 6),
                    "improvement": gain["estimate"],
                    "ci_low": gain["ci_low"],
                    "ci_high": gain["ci_high"],
                }
            )
        ev.measurements["adaptation"] = {
            "method": adaptation.get("method"),
            "parent_run": adaptation["parent_run"],
            "parent_weights_sha256": adaptation.get("parent_weights_sha256"),
            "site_data": adaptation.get("site_data"),
            "by_site": rows,
        }
        ev.tables.append(
            Table(
                title=f"Adapted model ({adaptation.get('method')}) against its parent run, paired per case (003 §5.3)",
                columns=list(rows[0]),
                rows=rows,
            )
        )

    @staticmethod
    def _examples(ctx: EvaluationContext, ev: Evidence, labels: Any, count: int = 3) -> None:
        data = ctx.data
        if data.task != "segmentation":
            return
        area = (data.targets > 0).reshape(len(data), -1).sum(axis=1)
        chosen: list[int] = []
        seen: set[str] = set()
        for i in np.argsort(-area, kind="stable").tolist():
            if data.case_ids[i] not in seen:
                chosen.append(i)
                seen.add(data.case_ids[i])
            if len(chosen) == count:
                break
        idx = np.asarray(chosen, dtype=np.int64)
        path = ctx.evidence_dir / "examples.npz"
        with atomic_file(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, image=data.images[idx, 0], truth=data.targets[idx], pred=labels[idx])
        ev.files["examples"] = "evidence/examples.npz"
        ev.plots.append(
            Plot(
                name="examples",
                kind="overlay",
                title="Example test slices with outlines",
                data_file="evidence/examples.npz",
                row_labels=[f"{data.case_ids[i]}" for i in chosen],
            )
        )

    @staticmethod
    def _stress(
        ctx: EvaluationContext, claim: GeneralizationClaim, ev: Evidence, labels: Any, name: str, resamples: int
    ) -> None:
        data = ctx.data
        if data.task != "segmentation":
            ev.measurements["stress"] = "not applicable: stress by target size applies to segmentation"
            if claim.stress_min_metric is not None:
                ev.not_evaluated(
                    f"stress samples {name} (A.12.1 b)",
                    f"≥ {claim.stress_min_metric}",
                    "stress by target size applies to segmentation",
                )
            return
        area = (data.targets > 0).reshape(len(data), -1).sum(axis=1)
        nonzero = area[area > 0]
        if nonzero.size < 2:
            ev.measurements["stress"] = "fewer than two images with a target: no stress set"
            ev.not_evaluated(f"stress samples {name} (A.12.1 b)", "baseline", "fewer than two images with a target")
            return
        limit = float(np.quantile(nonzero, claim.stress_quantile))
        idx = np.flatnonzero((area > 0) & (area <= limit))
        values = [dice(data.targets[i] > 0, labels[i] > 0) for i in idx]
        s = summarize(values, seed=ctx.seed, n_resamples=resamples)
        baseline = claim.stress_min_metric if claim.stress_min_metric is not None else claim.min_metric
        ev.measurements["stress"] = {
            **s,
            "max_target_pixels": int(limit),
            "images": int(idx.size),
            "unit": "image (foreground Dice)",
        }
        ev.at_least(
            f"stress samples {name} (A.12.1 b)", baseline, s, f"{idx.size} images with ≤ {int(limit)} target pixels"
        )


__all__ = ["Generalization", "GeneralizationClaim"]
