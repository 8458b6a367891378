"""The provider's claims (000 §5.2): one schema-validated YAML document per model.

000 §5.2.x asks the provider to *claim* each quality characteristic; 000 §6.3.x checks the claim
against measurement. :class:`Claims` is that declaration: metric targets, tolerances, hardware
and perturbation levels. Its sections are the claim models of the registered characteristics
(:mod:`aimd.evaluation.registry`), so a new characteristic adds its section here and to the
template by itself. A section left out means "no claim": the characteristic is still measured,
but its verdict is *not evaluated* with that reason. ``origin`` says who wrote the claims; the
report's first page repeats it.

Example
-------
>>> c = parse_claims("efficiency:\\n  max_latency_p95_ms: 50\\n", where="x.yaml")
>>> c.efficiency.max_latency_p95_ms, c.repeatability is None
(50.0, True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.evaluation.registry import REGISTRY


class ModelIdentity(BaseModel):
    """Who provides which model (000 A.3)."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    version: str = ""
    provider: str = ""


class ClaimsHeader(BaseModel):
    """The fields of a claims document besides the per-characteristic sections."""

    model_config = ConfigDict(extra="forbid")

    origin: str = Field("", description="who wrote these claims (e.g. the provider's name); the report states it")
    model: ModelIdentity = Field(default_factory=ModelIdentity)
    hardware: str = Field("", description="hardware the claims hold on (000 §4.5.3)")
    seed: int = 0
    bootstrap_resamples: int = Field(1000, ge=100)


Claims: Any = create_model(  # one optional section per registered characteristic
    "Claims",
    __base__=ClaimsHeader,
    __doc__="The provider's declaration for one model (000 §5.2).",
    **{
        c.key: (c.claim_model | None, Field(None, description=f"{c.requirement} / {c.clause} {c.title.lower()}"))
        for c in REGISTRY
    },
)


def parse_claims(text: str, *, where: str) -> Any:
    """Parse and validate claims YAML, naming the file and field on error.

    Raises
    ------
    SchemaError
        Invalid YAML, an unknown section or field, or a value of the wrong type or range.
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise SchemaError(
            f"claims are not valid YAML: {err}", where=where, hint="see `aimd evaluate claims-template`"
        ) from err
    if not isinstance(data, dict):
        raise SchemaError(
            f"claims must be a mapping of sections, got {type(data).__name__}",
            where=where,
            hint="see `aimd evaluate claims-template`",
        )
    try:
        return Claims.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SchemaError(
            f"claims field {field!r}: {first['msg']} (got {first.get('input')!r})",
            where=where,
            hint="see `aimd evaluate claims-template` for every field",
        ) from err


def load_claims(path: str | Path) -> Any:
    """Read a claims YAML file.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"; _ = p.write_text("seed: 3\\n")
    >>> load_claims(p).seed
    3
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(
            "claims file does not exist", where=str(p), hint="write one from `aimd evaluate claims-template`"
        )
    return parse_claims(p.read_text(encoding="utf-8"), where=str(p))


def _optional_section(annotation: Any) -> type[BaseModel] | None:
    """The claim model inside an ``X | None`` annotation, if any."""
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _comment_block(model: type[BaseModel], indent: str) -> list[str]:
    lines: list[str] = []
    for name, field in model.model_fields.items():
        default: Any = field.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            continue
        note = f"  # {field.description}" if field.description else ""
        value = "REQUIRED" if field.is_required() else yaml.safe_dump(default, default_flow_style=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{indent}{name}: {value}{note}")
        nested = _optional_section(field.annotation) if default is None else None
        if nested is not None:
            lines.append(f"{indent}# to ask for it, replace the null above with (defaults shown):")
            lines.extend(f"{indent}# {ln}" for ln in [f"{name}:", *_comment_block(nested, "  ")])
    return lines


TEMPLATE_REQUIRED = {"generalization": {"min_metric": 0.5}}


def claims_template() -> str:
    """A commented YAML template listing every section and field with its default (from the registry).

    A field without a default is shown with the value of :data:`TEMPLATE_REQUIRED`.

    Example
    -------
    >>> "robustness:" in claims_template()
    True
    """
    out = [
        "# aimd claims: the provider's declaration per quality characteristic (000 §5.2).",
        "# Remove a section to make no claim: it is then measured but reported as not evaluated.",
        'origin: ""  # who wrote these claims; the report states it on its first page',
        "model:",
        '  name: ""',
        '  version: ""',
        '  provider: ""',
        'hardware: "2 CPU cores"  # where the claims hold (000 §4.5.3)',
        "seed: 0",
        "bootstrap_resamples: 1000",
    ]
    for char in REGISTRY:
        out.append(f"# {char.requirement} / {char.clause} {char.title.lower()}")
        out.append(f"{char.key}:")
        block = _comment_block(char.claim_model, "  ")
        for field, value in TEMPLATE_REQUIRED.get(char.key, {}).items():
            block = [ln.replace(f"{field}: REQUIRED", f"{field}: {value}") for ln in block]
        out.extend(block)
    return "\n".join(out) + "\n"


def template_defaults() -> Any:
    """:class:`Claims` parsed from :func:`claims_template` (every section at its default).

    Example
    -------
    >>> template_defaults().privacy.max_membership_auc
    0.6
    """
    return parse_claims(claims_template(), where="claims template")


__all__ = [
    "Claims",
    "ClaimsHeader",
    "ModelIdentity",
    "claims_template",
    "load_claims",
    "parse_claims",
    "template_defaults",
]
