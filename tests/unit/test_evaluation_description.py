"""000 §6.2 model description: completeness and accuracy against the actual model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from test_evaluation_support import SIZE, SPEC_IN, SPEC_OUT, context

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.evaluation import Claims, Description, DescriptionClaim, Verdict, load_description
from aimd.evaluation.characteristics.description import REQUIRED_CLAUSES
from aimd.evaluation.runner import run_characteristic


def _doc(params: int = 2) -> dict[str, Any]:
    sections: dict[str, Any] = {
        c: {"title": c, "items": {"x": {"label": "x", "value": "stated", "source": "provider"}}}
        for c in REQUIRED_CLAUSES
    }
    sections["4.2.3"]["items"].update(
        {
            "total": {"label": "parameters", "value": params, "source": "model"},
            "input_shape": {"label": "input shape", "value": [1, 1, SIZE, SIZE], "source": "model"},
            "output_shape": {"label": "output shape", "value": [1, 1, SIZE, SIZE], "source": "model"},
        }
    )
    return {
        "sections": sections,
        "gaps": [],
        "input_spec": SPEC_IN.model_dump(mode="json"),
        "output_spec": SPEC_OUT.model_dump(mode="json"),
    }


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


def test_describe_any_onnx_or_torchscript_file(tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from aimd.cli.model import app as model_app
    from aimd.models.describe import describe_model
    from aimd.models.export import export_module_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 1)).eval()
    onnx_file = export_module_onnx(net, tmp_path / "m.onnx", SPEC_IN, SPEC_OUT, exporter="torchscript")
    doc = describe_model(onnx_file)
    items = doc["sections"]["4.2.3"]["items"]
    assert items["total"]["value"] == sum(p.numel() for p in net.parameters()) == 45
    assert items["layer_types"]["value"]["Conv"] == 2 and items["layer_types"]["value"]["Relu"] == 1
    shape = items["input_shape"]["value"]
    assert len(shape) == 4 and shape[1] == 1  # batch, channels, then the (dynamic) spatial axes
    gaps = {g["item"] for g in doc["gaps"]}
    assert {"learning method", "compute needed (FLOPs per sample)", "data amount and splits"} <= gaps
    bare = tmp_path / "bare.pt"
    torch.jit.save(torch.jit.script(net), str(bare))
    res = CliRunner().invoke(model_app, ["describe", str(bare), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["parameters"] == 45 and any(g["item"] == "input shape" for g in out["gaps"])
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(InvalidInputError, match="ONNX"):
        describe_model(tmp_path / "broken.onnx")
