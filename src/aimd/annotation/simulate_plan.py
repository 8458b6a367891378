"""What each simulated reader does differently from the phantom truth (see :mod:`aimd.annotation.simulate`).

Example
-------
>>> import numpy as np
>>> from types import SimpleNamespace
>>> case = SimpleNamespace(lesions=[{"id": "L1", "diameter_mm": 6, "voxel_count": 120},
...                                 {"id": "L2", "diameter_mm": 14, "voxel_count": 1500}],
...                        clinical={"labs": []}, report={})
>>> [(p.name, p.role, p.missed) for p in plan_readers(case, 3, np.random.default_rng(0))]
[('reader_1', 'reference', []), ('reader_2', 'variable', ['L1']), ('reader_3', 'model_assisted', ['L1'])]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ReaderPlan", "plan_readers"]


@dataclass
class ReaderPlan:
    """What one simulated reader does differently from the truth."""

    name: str
    role: str  # reference | variable | model_assisted
    lesion_ops: dict[str, tuple[str, Any]] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)
    extra_fp: bool = False
    organ_ops: dict[str, tuple[str, int]] = field(default_factory=dict)
    margin_flip: str | None = None
    diameter_delta: dict[str, int] = field(default_factory=dict)
    forget_time_label: list[str] = field(default_factory=list)
    span_relabel: dict[str, str] = field(default_factory=dict)
    box_jitter_px: float = 0.0


def _stale_labs(case: Any) -> list[str]:
    return [lab["code"] for lab in case.clinical.get("labs", []) if abs(int(lab["days_from_scan"])) > 90]


def plan_readers(case: Any, k: int, rng: np.random.Generator) -> list[ReaderPlan]:
    """The plans of ``k`` readers for one case (see the module docstring for the roles)."""
    by_size = sorted(case.lesions, key=lambda le: (le["diameter_mm"], le["id"]))
    small = [le["id"] for le in by_size[:1] if le["diameter_mm"] <= 8 and len(case.lesions) >= 2]
    plans = [ReaderPlan("reader_1", "reference")]
    for n in range(2, k + (0 if k >= 2 else 1)):
        first = n == 2
        plan = ReaderPlan(f"reader_{n}", "variable", box_jitter_px=1.0)
        plan.missed = list(small) if (first or rng.random() < 0.3) else []
        for le in case.lesions:
            if le["id"] in plan.missed:
                continue
            choice = int(rng.integers(4))
            if choice == 0 or (choice == 1 and le["voxel_count"] < 400):
                plan.lesion_ops[le["id"]] = ("dilate", 1)
            elif choice == 1:
                plan.lesion_ops[le["id"]] = ("erode", 1)
            else:
                plan.lesion_ops[le["id"]] = ("shift", (int(rng.choice([-2, -1, 1, 2])), 0, 0))
            plan.diameter_delta[le["id"]] = int(rng.choice([-1, 0, 1]))
        plan.organ_ops = {"LIVER": ("erode", 1)} if first else {str(rng.choice(["LIVER", "LUNG"])): ("dilate", 1)}
        kept = [le["id"] for le in case.lesions if le["id"] not in plan.missed]
        plan.margin_flip = kept[0] if kept and (first or rng.random() < 0.5) else None
        plan.extra_fp = first or rng.random() < 0.3
        stale = _stale_labs(case)
        plan.forget_time_label = stale[:1] if first else []
        spans = case.report.get("en", {}).get("spans", [])
        recs = [s["id"] for s in spans if s["type"] == "recommendation"]
        plan.span_relabel = {recs[0]: "finding"} if recs and first else {}
        plans.append(plan)
    if k >= 2:
        plans.append(ReaderPlan(f"reader_{k}", "model_assisted", missed=list(small)))
    return plans
