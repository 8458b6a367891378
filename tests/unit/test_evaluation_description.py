"""000 §6.2 model description: completeness and accuracy against the actual model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from test_evaluation_support import SIZE, SPEC_IN, SPEC_OUT, context

from aimd.core.errors import SchemaError
from aimd.evaluation import Claims, Description, DescriptionClaim, Verdict, load_description
from aimd.evaluation.characteristics.description import REQUIRED_CLAUSES
from aimd.evaluation.runner import run_characteristic


def _doc(params: int = 2) -> dict[str, Any]:
    sections: dict[str, Any] = {c: {"title": c, "items": {"x": {"label": "x", "value": "stated", "source": "provider"}}}
                                for c in REQUIRED_CLAUSES}
    sections["4.2.3"]["items"].update({
        "total": {"label": "parameters", "value": params, "source": "model"},
        "input_shape": {"label": "input shape", "value": [1, 1, SIZE, SIZE], "source": "model"},
        "output_shape": {"label": "output shape", "value": [1, 1, SIZE, SIZE], "source": "model"}})
    return {"sections": sections, "gaps": [], "input_spec": SPEC_IN.model_dump(mode="json"),
            "output_spec": SPEC_OUT.model_dump(mode="json")}


def test_complete_and_accurate_description_conforms(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.description = _doc()
    res = run_characteristic(Description(), ctx, Claims(description=DescriptionClaim(parameters=2)))
    assert res.verdict == Verdict.CONFORM, res.reason
    derived = res.evidence.measurements["derived_from_model"]
    assert derived == {"input_shape": [1, SIZE, SIZE], "output_channels": 1, "parameters": 2}


def test_wrong_parameter_count_and_gaps_do_not_conform(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    doc = _doc(params=99)
    doc["gaps"] = [{"clause": "000 §4.1", "item": "provider", "required": True}]
    del doc["sections"]["4.5.3"]
    ctx.description = doc
    res = run_characteristic(Description(), ctx, Claims(description=DescriptionClaim()))
    assert res.verdict == Verdict.NONCONFORM
    failed = {c.name: c for c in res.evidence.checks if not c.passed}
    assert failed["description states parameters correctly"].measured == 2
    assert failed["required §4 items missing"].measured == 2
    assert "4.5.3" in failed["required §4 items missing"].detail


def test_missing_description_does_not_conform(tmp_path: Path) -> None:
    res = run_characteristic(Description(), context(tmp_path), Claims(description=DescriptionClaim()))
    assert res.verdict == Verdict.NONCONFORM and "description supplied" in res.reason


def test_load_description_errors(tmp_path: Path) -> None:
    bad = tmp_path / "d.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(SchemaError):
        load_description(bad)
    bad.write_text("[]", encoding="utf-8")
    with pytest.raises(SchemaError):
        load_description(bad)
    good = tmp_path / "g.json"
    good.write_text(json.dumps(copy.deepcopy(_doc())), encoding="utf-8")
    assert load_description(good)["sections"]["4.2.3"]["items"]["total"]["value"] == 2
