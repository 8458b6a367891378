"""000 §6.2 evaluation of the model description: complete (every §4 item) and accurate.

Completeness: every required item of 000 §4 is present — the description's ``gaps`` list names
what is missing and each §4 clause must hold at least one item. Accuracy: facts the description
states are re-derived from the actual model and compared — parameter count, input shape,
output channels (by a forward pass) and the declared input/output specs.

Example
-------
>>> stated_value({"sections": {"4.2.3": {"items": {"total": {"value": 7}}}}}, "4.2.3", "total")
7
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.errors import SchemaError
from aimd.evaluation.base import Characteristic
from aimd.evaluation.claims import Claims, DescriptionClaim
from aimd.evaluation.context import EvaluationContext
from aimd.evaluation.evidence import Evidence, Table

REQUIRED_CLAUSES = ("4.1", "4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.3.1", "4.3.2", "4.3.3", "4.4.1", "4.4.3",
                    "4.5.1", "4.5.2", "4.5.3")


def stated_value(doc: dict[str, Any], clause: str, key: str) -> Any:
    """The value the description states for ``clause``/``key``, ``None`` when absent."""
    item = doc.get("sections", {}).get(clause, {}).get("items", {}).get(key)
    return item.get("value") if isinstance(item, dict) else None


def load_description(path: str | Path) -> dict[str, Any]:
    """Read a model description JSON (``aimd model describe --format json``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SchemaError(f"model description cannot be read as JSON: {err}", where=str(p),
                          hint="write it with `aimd model describe MODEL --format json`") from err
    if not isinstance(doc, dict) or "sections" not in doc:
        raise SchemaError("model description lacks 'sections'", where=str(p),
                          hint="write it with `aimd model describe MODEL --format json`")
    return doc


class Description(Characteristic):
    """000 §6.2 against 000 §4."""

    key = "description"
    clause = "000 §6.2"
    requirement = "000 §4"
    title = "Model description"
    method = ("Check that every 000 §4 clause holds items and count the required items the description lists as "
              "missing (completeness); re-derive parameters, input shape, output channels and the I/O specs from "
              "the model itself and compare them with what the description states (accuracy).")
    claim_model = DescriptionClaim

    def measure(self, ctx: EvaluationContext, claim: Any, claims: Claims) -> Evidence:
        assert isinstance(claim, DescriptionClaim)
        ev = Evidence()
        doc = ctx.description
        if not ev.check("description supplied (000 §6.1)", "present", "present" if doc else "absent", bool(doc)):
            return ev
        assert doc is not None
        sections = doc.get("sections", {})
        empty = [c for c in REQUIRED_CLAUSES if not sections.get(c, {}).get("items")]
        gaps = [g for g in doc.get("gaps", []) if g.get("required", True)]
        missing = sorted(set(empty) | {str(g.get("clause", "")).replace("000 §", "") for g in gaps})
        rows = [{"clause": f"000 §{c}", "items": len(sections.get(c, {}).get("items", {})),
                 "missing": ", ".join(str(g.get("item")) for g in gaps if g.get("clause") == f"000 §{c}")}
                for c in REQUIRED_CLAUSES]
        ev.tables.append(Table(title="Completeness per 000 §4 clause", columns=["clause", "items", "missing"],
                               rows=rows))
        ev.measurements["required_items_missing"] = len(gaps)
        ev.measurements["clauses_without_items"] = empty
        ev.check("required §4 items missing", f"≤ {claim.max_missing_items}", len(gaps) + len(empty),
                 len(gaps) + len(empty) <= claim.max_missing_items, "; ".join(missing))
        self._accuracy(ctx, claim, doc, ev)
        return ev

    @staticmethod
    def _accuracy(ctx: EvaluationContext, claim: DescriptionClaim, doc: dict[str, Any], ev: Evidence) -> None:
        spec = ctx.predictor.input_spec
        probe = np.zeros((1, spec.channels, *spec.patch_size), np.float32)
        out_channels = int(ctx.predictor.predict(probe).shape[1])
        actual: dict[str, Any] = {"input_shape": [spec.channels, *spec.patch_size], "output_channels": out_channels,
                                  "input_spec": spec.model_dump(mode="json"),
                                  "output_spec": ctx.predictor.output_spec.model_dump(mode="json")}
        if ctx.network is not None:
            actual["parameters"] = int(sum(p.numel() for p in ctx.network.parameters()))
        ev.measurements["derived_from_model"] = {k: v for k, v in actual.items() if not k.endswith("_spec")}
        shape_in = stated_value(doc, "4.2.3", "input_shape")
        shape_out = stated_value(doc, "4.2.3", "output_shape")
        stated = {"parameters": stated_value(doc, "4.2.3", "total"),
                  "input_shape": list(shape_in[1:]) if isinstance(shape_in, list) else None,
                  "output_channels": shape_out[1] if isinstance(shape_out, list) and len(shape_out) > 1 else None,
                  "input_spec": doc.get("input_spec"), "output_spec": doc.get("output_spec")}
        for key, value in stated.items():
            if key not in actual:
                continue
            ev.check(f"description states {key} correctly", value, actual[key], value == actual[key],
                     "stated in the description" if value is not None else "not stated in the description")
        for key in ("parameters", "input_shape", "output_channels"):
            value = getattr(claim, key)
            if value is not None and key in actual:
                want = list(value[1:]) if key == "input_shape" else value
                ev.check(f"claimed {key}", want, actual[key], want == actual[key])
        ev.tables.append(Table(title="Stated vs derived", columns=["fact", "stated", "derived"],
                               rows=[{"fact": k, "stated": stated[k], "derived": actual[k]}
                                     for k in ("parameters", "input_shape", "output_channels") if k in actual]))


__all__ = ["REQUIRED_CLAUSES", "Description", "load_description", "stated_value"]
