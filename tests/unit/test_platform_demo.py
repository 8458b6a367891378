"""The platform stage of the demo on two small de-identified phantom cases."""

from __future__ import annotations

import json
from pathlib import Path

from aimd.imaging.deid import deidentify_path
from aimd.phantoms import generate_dataset
from aimd.platform.demo import run_platform_demo


def test_platform_demo_routes_one_case_to_arbitration_and_exports(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "ph", cases=2, seed=0, size=32, workers=1)
    deidentify_path(tmp_path / "ph", tmp_path / "deid", tmp_path / "secrets" / "map.json", overwrite=True)
    out = run_platform_demo(tmp_path / "deid", tmp_path / "platform")
    assert out["routes"] == {"case_0001": "review", "case_0002": "arbitration"}
    assert out["min_dice"]["case_0001"] == 1.0 and out["min_dice"]["case_0002"] < 0.85
    assert out["arbitrated"] == 1 and out["audit_ok"]
    trace = json.loads(Path(out["traceability"]).read_text())
    assert [c["case"] for c in trace["cases"]] == ["case_0001", "case_0002"]
    assert any(d["kind"] == "arbitration" for d in trace["cases"][1]["decisions"])
