"""Claims schema (000 §5.2): template, validation, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.evaluation import Claims, claims_template, load_claims, parse_claims


def test_template_parses_and_lists_every_section() -> None:
    text = claims_template()
    claims = parse_claims(text, where="template")
    sections = [name for name, f in Claims.model_fields.items() if name not in ("model",)
                and f.annotation is not None and "Claim" in str(f.annotation)]
    assert sections, "Claims declares characteristic sections"
    for name in sections:
        assert getattr(claims, name) is not None, f"template lacks section {name}"
    raw = yaml.safe_load(text)
    assert set(sections) <= set(raw)


def test_template_defaults_equal_schema_defaults() -> None:
    claims = parse_claims(claims_template(), where="template")
    assert claims.robustness is not None and claims.robustness.severities == [0.25, 0.5, 1.0]
    assert claims.repeatability is not None and claims.repeatability.thread_counts == [1, 2]


def test_missing_section_means_no_claim() -> None:
    claims = parse_claims("seed: 4\n", where="c.yaml")
    assert claims.seed == 4 and claims.efficiency is None and claims.generalization is None


@pytest.mark.parametrize(("text", "field"), [
    ("efficiency:\n  max_latency_p95_ms: -1\n", "efficiency.max_latency_p95_ms"),
    ("robustness:\n  artefacts: [snow]\n", "robustness.artefacts.0"),
    ("generalization: {}\n", "generalization.min_metric"),
    ("efficency: {}\n", "efficency"),
])
def test_invalid_claims_name_the_field(text: str, field: str) -> None:
    with pytest.raises(SchemaError) as info:
        parse_claims(text, where="c.yaml")
    assert field in info.value.message and info.value.where == "c.yaml"


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError):
        parse_claims("a: [1,\n", where="x")
    with pytest.raises(SchemaError):
        parse_claims("- 1\n- 2\n", where="x")
    with pytest.raises(InvalidInputError):
        load_claims(tmp_path / "absent.yaml")
    path = tmp_path / "c.yaml"
    path.write_text("efficiency:\n  runs: 7\n", encoding="utf-8")
    loaded = load_claims(path)
    assert loaded.efficiency is not None and loaded.efficiency.runs == 7
