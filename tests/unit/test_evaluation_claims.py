"""Claims schema (000 §5.2): template, validation, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.evaluation import (
    CLAUSE_KEYS,
    AdversarialClaim,
    Claims,
    claims_template,
    load_claims,
    parse_claims,
    template_defaults,
)
from aimd.evaluation.support.dp import DPClaim


def test_template_parses_and_lists_every_section() -> None:
    text = claims_template()
    claims = parse_claims(text, where="template")
    sections = [
        name
        for name, f in Claims.model_fields.items()
        if name not in ("model",) and f.annotation is not None and "Claim" in str(f.annotation)
    ]
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


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("efficiency:\n  max_latency_p95_ms: -1\n", "efficiency.max_latency_p95_ms"),
        ("robustness:\n  artefacts: [snow]\n", "robustness.artefacts.0"),
        ("generalization: {}\n", "generalization.min_metric"),
        ("efficency: {}\n", "efficency"),
    ],
)
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


def test_template_shows_the_optional_dp_block_with_its_defaults() -> None:
    lines = claims_template().splitlines()
    at = lines.index(next(ln for ln in lines if ln.startswith("  dp: null")))
    block = []
    for ln in lines[at + 2 :]:
        if not ln.startswith("  # "):
            break
        block.append("  " + ln[4:])
    enabled = "\n".join(lines[:at] + block + lines[at + 1 + 1 + len(block) :]) + "\n"
    claims = parse_claims(enabled, where="template")
    assert claims.privacy is not None and claims.privacy.dp == DPClaim()
    assert claims.privacy.dp.epsilon_target == 8.0 and claims.privacy.dp.batchnorm == "freeze"
    assert parse_claims(claims_template(), where="t").privacy.dp is None  # type: ignore[union-attr]


def test_adversarial_and_dp_fields_are_validated() -> None:
    claims = parse_claims("adversarial:\n  attacks: [square]\n  square_iterations: 12\n", where="c.yaml")
    assert claims.adversarial is not None and claims.adversarial.attacks == ["square"]
    assert AdversarialClaim().attacks == ["fgsm", "pgd", "square"]
    for text, field in [
        ("adversarial:\n  attacks: [hopskipjump]\n", "adversarial.attacks.0"),
        ("adversarial:\n  epsilons: [0.01, 0]\n", "adversarial.epsilons.1"),
        ("adversarial:\n  square_p_init: 1.0\n", "adversarial.square_p_init"),
        ("privacy:\n  dp:\n    epsilon_target: null\n", "privacy.dp"),
        ("privacy:\n  dp:\n    batchnorm: drop\n", "privacy.dp.batchnorm"),
        ("privacy:\n  dp:\n    delta: 1.5\n", "privacy.dp.delta"),
    ]:
        with pytest.raises(SchemaError) as info:
            parse_claims(text, where="c.yaml")
        assert field in info.value.message, text
    dp = parse_claims("privacy:\n  dp:\n    noise_multiplier: 0.8\n    epsilon_target: null\n", where="c").privacy
    assert dp is not None and dp.dp is not None and dp.dp.noise_multiplier == 0.8


def test_reference_claims_equal_the_template_unless_a_comment_says_why() -> None:
    from aimd.reports.pipeline import REFERENCE_CLAIMS, REFERENCE_ORIGIN

    ref = parse_claims(REFERENCE_CLAIMS, where="reference")
    assert ref.origin == REFERENCE_ORIGIN and "not a provider declaration" in ref.origin
    defaults = template_defaults()
    lines = REFERENCE_CLAIMS.splitlines()
    for key in CLAUSE_KEYS:
        start = lines.index(f"{key}:")
        block = []
        for line in lines[start + 1 :]:
            if not line.startswith("  "):
                break
            block.append(line)
        ours, base = getattr(ref, key).model_dump(), getattr(defaults, key).model_dump()
        for line in block:
            field = line.split(":", 1)[0].strip()
            if ours[field] != base[field]:
                assert "#" in line, f"{key}.{field} differs from the template without a comment: {line}"
    assert ref.adversarial.attacks == ["fgsm", "pgd", "square"]  # the black-box attack is not dropped
