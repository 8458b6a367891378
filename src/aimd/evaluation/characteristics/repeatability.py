"""000 §6.3.5 output repeatability: the same input gives the same quantitative output (§5.2.5).

The same test batch is predicted ``repeats`` times in one configuration (maximum absolute
deviation of the probabilities from the first run), once per thread count, and once per runtime
(PyTorch and ONNX Runtime fp32). Each comparison reports the maximum absolute deviation and the
fraction of pixels (segmentation) or images (classification) whose label changed; the claim
bounds both.

Example
-------
>>> import numpy as np
>>> max_deviation([np.zeros(3), np.array([0.0, 0.5, 0.0])])
0.5
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import Field

from aimd.evaluation.base import Characteristic, ClaimModel
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Table
from aimd.evaluation.support.onnx_files import export_onnx_configs
from aimd.evaluation.support.scoring import labels_from_probs


def max_deviation(outputs: list[NDArray[Any]]) -> float:
    """Largest absolute difference of any output from the first one."""
    first = np.asarray(outputs[0], dtype=np.float64)
    return float(max(np.max(np.abs(np.asarray(o, dtype=np.float64) - first)) for o in outputs))


def label_disagreement(a: NDArray[np.int64], b: NDArray[np.int64]) -> float:
    """Fraction of labels that differ.

    Example
    -------
    >>> label_disagreement(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]))
    0.25
    """
    return float(np.mean(np.asarray(a) != np.asarray(b)))


class RepeatabilityClaim(ClaimModel):
    """000 §5.2.5 / §6.3.5: identical inputs give the same quantitative output."""

    repeats: int = Field(5, ge=2, le=1000)
    max_abs_deviation: float = Field(1e-6, ge=0, description="same runtime, same threads")
    thread_counts: list[int] = Field(default_factory=lambda: [1, 2])
    max_thread_deviation: float = Field(1e-4, ge=0, description="across thread counts")
    runtimes: list[Literal["torch", "onnx"]] = Field(default_factory=lambda: ["torch", "onnx"])
    max_runtime_deviation: float = Field(1e-3, ge=0, description="probabilities, torch vs ONNX Runtime")
    max_label_disagreement: float = Field(0.001, ge=0, le=1, description="fraction of pixels/images")


class Repeatability(Characteristic):
    """000 §6.3.5 against the §5.2.5 claim."""

    key = "repeatability"
    clause = "000 §6.3.5"
    requirement = "000 §5.2.5"
    title = "Output repeatability"
    method = (
        "Predict the same test batch N times in one configuration, then with each claimed thread count and "
        "with each claimed runtime (PyTorch, ONNX Runtime fp32); report the maximum absolute deviation of "
        "the output probabilities and the fraction of changed labels against the first run."
    )
    claim_model = RepeatabilityClaim

    def run(self, ctx: EvaluationContext, claim: Any) -> Evidence:
        assert isinstance(claim, RepeatabilityClaim)
        ev = Evidence()
        rng = np.random.default_rng(ctx.seed)
        n = min(len(ctx.data), 8)
        batch = ctx.data.images[np.sort(rng.choice(len(ctx.data), size=n, replace=False))]
        spec = ctx.predictor.output_spec
        previous = torch.get_num_threads()
        rows: list[dict[str, Any]] = []
        try:
            torch.set_num_threads(max(1, ctx.threads))
            ctx.note("repeatability: repeated runs")
            runs = [ctx.predictor.predict(batch) for _ in range(claim.repeats)]
            base = runs[0]
            base_labels = labels_from_probs(base, spec)
            same = max_deviation(runs)
            changed = max(label_disagreement(base_labels, labels_from_probs(r, spec)) for r in runs)
            rows.append(
                {"comparison": f"{claim.repeats} repeats", "max_abs_deviation": same, "label_disagreement": changed}
            )
            ev.check(
                "max deviation over repeats", f"≤ {claim.max_abs_deviation}", same, same <= claim.max_abs_deviation
            )
            by_threads = []
            for t in claim.thread_counts:
                torch.set_num_threads(t)
                by_threads.append(ctx.predictor.predict(batch))
            dev_t = max_deviation([base, *by_threads])
            changed_t = max(label_disagreement(base_labels, labels_from_probs(r, spec)) for r in by_threads)
            rows.append(
                {
                    "comparison": f"threads {claim.thread_counts}",
                    "max_abs_deviation": dev_t,
                    "label_disagreement": changed_t,
                }
            )
            ev.check(
                "max deviation across thread counts",
                f"≤ {claim.max_thread_deviation}",
                dev_t,
                dev_t <= claim.max_thread_deviation,
            )
            worst_labels = max(changed, changed_t)
            if "onnx" in claim.runtimes and "torch" in claim.runtimes:
                dev_r, changed_r = self._runtimes(ctx, batch, base, base_labels)
                if dev_r is not None:
                    rows.append(
                        {
                            "comparison": "PyTorch vs ONNX Runtime fp32",
                            "max_abs_deviation": dev_r,
                            "label_disagreement": changed_r,
                        }
                    )
                    ev.check(
                        "max deviation torch vs ONNX Runtime",
                        f"≤ {claim.max_runtime_deviation}",
                        dev_r,
                        dev_r <= claim.max_runtime_deviation,
                    )
                    worst_labels = max(worst_labels, float(changed_r))
                else:
                    ev.not_evaluated(
                        "max deviation torch vs ONNX Runtime",
                        f"≤ {claim.max_runtime_deviation}",
                        "the model is not a torch module aimd can export, so there is no second runtime "
                        "to compare with",
                    )
            ev.check(
                "label disagreement",
                f"≤ {claim.max_label_disagreement}",
                worst_labels,
                worst_labels <= claim.max_label_disagreement,
            )
        finally:
            torch.set_num_threads(previous)
        ev.measurements.update(
            {
                "batch_items": n,
                "repeats": claim.repeats,
                "thread_counts": claim.thread_counts,
                "output_shape": list(base.shape),
            }
        )
        ev.tables.append(Table(title="Deviation from the first run", columns=list(rows[0]), rows=rows))
        return ev

    @staticmethod
    def _runtimes(
        ctx: EvaluationContext, batch: NDArray[np.float32], base: NDArray[np.float32], base_labels: NDArray[np.int64]
    ) -> tuple[float | None, float | None]:
        if ctx.network is None or ctx.predictor.metadata.get("adapter") != "torch":
            return None, None
        from aimd.models.adapters.onnx import OnnxPredictor

        ctx.note("repeatability: ONNX Runtime comparison")
        onnx = OnnxPredictor(export_onnx_configs(ctx)["onnx_fp32"], threads=ctx.threads)
        out = onnx.predict(batch)
        return max_deviation([base, out]), label_disagreement(
            base_labels, labels_from_probs(out, ctx.predictor.output_spec)
        )


__all__ = ["Repeatability", "RepeatabilityClaim", "label_disagreement", "max_deviation"]
