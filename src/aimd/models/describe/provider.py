"""What only the model provider can state (000 §4): read from a provider YAML, validated.

Everything aimd can derive from the network, its specs or the training record is derived; this file
supplies the rest — release version, acquisition devices, annotation, data quality criteria and
cleaning, de-identification rules, interpretability findings, downstream expectations, recommended
hardware. Unknown keys are rejected so a typo never silently drops a statement.

Example YAML::

    version: "1.0.0"
    provider: Example Medical AI Ltd.
    data:
      acquisition_devices: "simulated CT (aimd.phantoms), three virtual sites"
      quality_criteria: "phantom cases only; exact ground truth"
    applicability:
      recommended_hardware: "x86-64 CPU, 4 GB RAM"

Example
-------
>>> ProviderInfo.model_validate({"version": "1.0.0"}).version
'1.0.0'
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from aimd.core.errors import InvalidInputError, SchemaError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderData(_Strict):
    """Source-task data statements (000 §4.3)."""

    acquisition_devices: str | None = None
    synthetic_method: str | None = None
    annotation: str | None = None
    quality_criteria: str | None = None
    cleaning: str | None = None
    dataset_standard: str | None = None
    deidentification: str | None = None


class ProviderApplicability(_Strict):
    """Applicability statements (000 §4.5)."""

    modalities_after_finetuning: str | None = None
    domain_similarity: str | None = None
    scenarios: str | None = None
    expected_performance: str | None = None
    robustness_methods: str | None = None
    generalization_methods: str | None = None
    recommended_hardware: str | None = None
    downstream_data: str | None = None
    finetuning_settings: str | None = None


class ProviderInfo(_Strict):
    """The provider YAML."""

    name: str | None = None
    version: str | None = None
    provider: str | None = None
    license: str | None = None
    contact: str | None = None
    structure_notes: str | None = None
    interpretability: str | None = None
    task_domain: str | None = None
    data: ProviderData = ProviderData()
    applicability: ProviderApplicability = ProviderApplicability()


def load_provider(path: str | Path | None) -> ProviderInfo:
    """Read and validate a provider YAML; ``None`` gives an empty :class:`ProviderInfo`."""
    if path is None:
        return ProviderInfo()
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError("provider file does not exist", where=str(p), hint="pass a YAML file to --extra")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SchemaError(
            f"not valid YAML ({str(err).splitlines()[0]})", where=str(p), hint="fix the YAML syntax"
        ) from err
    if not isinstance(data, dict):
        raise SchemaError("top level must be a mapping", where=str(p), hint="write key: value pairs")
    try:
        return ProviderInfo.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        raise SchemaError(
            f"field {field!r}: {first['msg']}",
            where=str(p),
            hint=f"allowed keys: {sorted(ProviderInfo.model_fields)}; data.* and "
            "applicability.* as documented in aimd.models.describe.provider",
        ) from err


__all__ = ["ProviderApplicability", "ProviderData", "ProviderInfo", "load_provider"]
