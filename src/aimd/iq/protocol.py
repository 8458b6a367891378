"""The installation qualification protocol (002 §3.4, §4.1–§4.3, App. A.2, App. B) as a schema-checked YAML.

:class:`IQProtocol` is what the provider hands the site: environment minimum and recommended
configuration with a hardened reference (§4.1.1), the install steps a–h (§4.1.2), staffing,
personnel and training records (§4.1.3, §6.1.2), the RACI matrix (App. A.2), functional test cases
(§4.3.1), the baseline dataset with its validated reference results (§4.3.2), stress levels and
limits (§6.4.2), alert rules (§6.5.2), the version manifest (§5.5) and the scoring weights (§6.1).
Its JSON Schema is exported from the models (:func:`protocol_schema`), never written by hand; the
protocol aimd ships for its own device is :func:`aimd.iq.template.protocol_template`.

Example
-------
>>> from aimd.iq.template import protocol_template
>>> p = protocol_template()
>>> [s.id for s in p.install_steps]
['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
>>> IQProtocol.model_validate(p.model_dump(mode="json")).version_manifest.version == p.device.version
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.iq.specs import LinkDrill, NetworkFault, PlatformSpec

PROTOCOL_FORMAT = "aimd-iq-protocol"
AREAS = ("resources", "function", "security", "reliability", "performance", "logs", "versions")
RACI_ROLES = (
    "user_project_manager",
    "user_domain_expert",
    "provider_project_manager",
    "provider_install_engineer",
    "provider_quality_expert",
)
RaciCode = Literal["R", "A", "C", "I", "-"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Model):
    """One hardware configuration (002 §4.1.1 a)."""

    cpu_cores: int = Field(ge=1)
    memory_gb: float = Field(gt=0)
    disk_free_gb: float = Field(gt=0)
    gpu: str | None = Field(None, description="GPU model, or null when none is needed")
    network_mbps: float | None = Field(None, gt=0)


class SoftwareRequirement(_Model):
    """An operating system, runtime or library with its version requirement (002 §4.1.1 b, c)."""

    category: Literal["os", "virtualization", "runtime", "library", "middleware", "database"]
    name: str
    version: str = Field(description="PEP 440 specifier such as '>=3.11' (OS: a prefix such as 'Linux')")
    note: str = ""


class HardeningItem(_Model):
    """One item of the hardened reference configuration (002 §4.1.1, §6.2.1)."""

    key: Literal["not_root", "key_file_mode", "database_file_mode", "debug_off", "tls_on", "loopback_or_tls"]
    expected: str
    note: str = ""


class InstallStep(_Model):
    """One stage a–h of the install flow (002 §4.1.2)."""

    id: Literal["a", "b", "c", "d", "e", "f", "g", "h"]
    title: str
    tasks: list[str] = Field(min_length=1)
    responsible: str
    notes: str = ""


class RaciRow(_Model):
    """One activity of the RACI matrix (002 App. A.2)."""

    activity: str
    roles: dict[str, RaciCode]

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(RACI_ROLES))
        if unknown:
            raise ValueError(f"unknown RACI roles {unknown}; use {list(RACI_ROLES)}")
        if list(value.values()).count("A") != 1:
            raise ValueError("exactly one role must be Accountable (A)")
        return value


class StaffingRequirement(_Model):
    """A role the plan needs (002 §4.1.3, App. B.1.2.2)."""

    role: str
    count: int = Field(ge=1)
    party: Literal["provider", "user", "both"]
    skills: str
    qualification_required: bool = False


class TrainingRecord(_Model):
    """A training a person received and how it was assessed (002 §6.1.2 c)."""

    course: str
    date: str
    assessed: bool
    result: str = ""


class Person(_Model):
    """Someone who takes part in the IQ (filled in by the site; 002 §4.1.3, §6.1.2 a)."""

    name: str
    role: str
    party: Literal["provider", "user"]
    qualification: str = ""
    training: list[TrainingRecord] = Field(default_factory=list)


class FunctionalTestCase(_Model):
    """A functional confirmation test (002 §4.3.1 a–c) with its acceptance criterion."""

    id: str
    kind: Literal["ui", "interface", "main_flow"]
    description: str
    system: Literal["service", "platform"] = Field(
        "service",
        description="which system the path is on: the inference service (--target) or the annotation "
        "platform (--platform)",
    )
    method: Literal["GET", "POST"] = "GET"
    path: str = Field(description="URL path on the system, e.g. /v2/health/ready")
    expect_status: int = 200
    expect_text: str | None = Field(
        None, description="text the answer must hold (a UI page: its document as rendered by the browser)"
    )
    acceptance: str


class BaselineCase(_Model):
    """One baseline case with its validated reference result."""

    id: str
    request: dict[str, Any] = Field(default_factory=dict, description="JSON body sent to the baseline endpoint")
    file: str | None = Field(None, description="image file uploaded instead of a JSON body (multipart)")
    reference: str = Field(description="the validated expected answer (e.g. a class label)")


class BaselineSpec(_Model):
    """Baseline dataset and acceptance limits (002 §4.3.2 a–d)."""

    dataset: str
    reference_source: str = Field(description="where the validated reference results come from")
    endpoint: str = "/v2/health/ready"
    answer_field: str | None = Field(
        None,
        description="dotted JSON path of the answer compared with the reference; '#' counts a list, e.g. 'findings.#'",
    )
    upload_field: str = Field("files", description="multipart field name of uploaded files")
    cases: list[BaselineCase] = Field(default_factory=list)
    max_mean_seconds_per_case: float = Field(gt=0)
    concurrency_users: int = Field(ge=1)
    concurrency_requests: int = Field(ge=1)
    min_success_rate: float = Field(ge=0, le=1)
    max_mean_response_s: float = Field(gt=0)
    min_accuracy: float | None = Field(None, ge=0, le=1)
    max_cpu_percent: float = Field(gt=0)
    max_memory_mb: float = Field(gt=0)


class StressSpec(_Model):
    """Step-up stress test (002 §6.4.2 a–d)."""

    levels: list[int] = Field(min_length=1)
    requests_per_user: int = Field(ge=1)
    p95_limit_s: float = Field(gt=0)
    max_error_rate: float = Field(ge=0, le=1)
    expected_max_concurrency: int = Field(ge=1)

    @field_validator("levels")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[0] < 1:
            raise ValueError(f"levels must be positive and strictly increasing, got {value}")
        return value


class AlertRule(_Model):
    """An alert rule over a Prometheus metric (002 §5.4.2, §6.5.2 b)."""

    name: str
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    severity: Literal["critical", "warning", "info"] = "warning"
    fault: str | None = Field(None, description="the injected fault this rule must catch (fault scenario key)")


class DependencySpec(_Model):
    """A dependency the service needs (database, PACS) and how the site stops and starts it (002 §6.3.1 c)."""

    name: str
    stop: list[str] = Field(min_length=1, description="command that stops the dependency")
    start: list[str] = Field(min_length=1, description="command that starts it again (may return at once)")
    recover_within_s: float = Field(60.0, gt=0)


class Component(_Model):
    """One versioned component of the release (002 §5.5.1 a–c)."""

    name: str
    kind: Literal["code", "model", "document", "configuration"]
    version: str


class VersionManifest(_Model):
    """Versions that must agree across the installed system (002 §5.5)."""

    version: str
    components: list[Component] = Field(default_factory=list)


class Device(_Model):
    """The device under qualification."""

    name: str
    version: str
    manufacturer: str
    intended_use: str


class Scoring(_Model):
    """Weights per area and the pass mark of the weighted score (002 §6.1)."""

    weights: dict[str, float]
    pass_score: float = Field(ge=0, le=100)
    critical_areas: list[str] = Field(default_factory=lambda: ["security", "reliability", "versions"])

    @field_validator("weights")
    @classmethod
    def _areas(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(AREAS))
        if unknown:
            raise ValueError(f"unknown areas {unknown}; use {list(AREAS)}")
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must be non-negative with a positive sum")
        return value


class SecuritySpec(_Model):
    """What the security checks try (002 §5.1, §6.2)."""

    public_routes: list[str] = Field(
        default_factory=lambda: [
            "/v2/health/live",
            "/v2/health/ready",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/redoc",
        ]
    )
    login_path: str | None = "/auth/token"
    weak_credentials: list[list[str]] = Field(
        default_factory=lambda: [["admin", "admin"], ["admin", "password"], ["root", "root"], ["user", "123456"]]
    )
    require_tls: bool = True


class LogSpec(_Model):
    """Log retention and the lifecycle events required (002 §5.4.1, §6.5.1 d)."""

    retention_days: int = Field(ge=1)
    required_events: list[str] = Field(
        default_factory=lambda: ["created", "approved", "executed", "completed", "failed"]
    )


class IQProtocol(_Model):
    """The installation qualification protocol (002 §3.4)."""

    format: Literal["aimd-iq-protocol"] = PROTOCOL_FORMAT
    protocol_id: str
    purpose: str
    site: str
    device: Device
    environment_minimum: Resources
    environment_recommended: Resources
    software: list[SoftwareRequirement] = Field(min_length=1)
    hardening: list[HardeningItem] = Field(min_length=1)
    install_steps: list[InstallStep]
    raci: list[RaciRow] = Field(min_length=1)
    staffing: list[StaffingRequirement] = Field(min_length=1)
    personnel: list[Person] = Field(default_factory=list)
    functional_tests: list[FunctionalTestCase] = Field(default_factory=list)
    baseline: BaselineSpec
    stress: StressSpec
    alert_rules: list[AlertRule] = Field(default_factory=list)
    dependencies: list[DependencySpec] = Field(default_factory=list)
    network_faults: list[NetworkFault] = Field(default_factory=list)
    links: LinkDrill | None = Field(None, description="faults on the service's PACS and database links")
    platform: PlatformSpec | None = Field(None, description="the annotation platform's MFA, roles, audit, import")
    required_metrics: list[str] = Field(default_factory=list)
    security: SecuritySpec = Field(default_factory=SecuritySpec)
    logs: LogSpec
    version_manifest: VersionManifest
    scoring: Scoring

    @model_validator(mode="after")
    def _consistent(self) -> IQProtocol:
        ids = [s.id for s in self.install_steps]
        if sorted(ids) != list("abcdefgh"):
            raise ValueError(f"install_steps must hold each of the stages a–h of 002 §4.1.2 once, got {ids}")
        if self.version_manifest.version != self.device.version:
            raise ValueError(
                f"version_manifest.version {self.version_manifest.version!r} differs from "
                f"device.version {self.device.version!r}"
            )
        low, high = self.environment_minimum, self.environment_recommended
        if high.cpu_cores < low.cpu_cores or high.memory_gb < low.memory_gb or high.disk_free_gb < low.disk_free_gb:
            raise ValueError("environment_recommended must be at least environment_minimum")
        return self


def protocol_schema() -> dict[str, Any]:
    """JSON Schema of :class:`IQProtocol`.

    Example
    -------
    >>> protocol_schema()["title"]
    'IQProtocol'
    """
    return IQProtocol.model_json_schema()


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def load_protocol(path: str | Path) -> IQProtocol:
    """Read and validate a protocol YAML; errors name the file and the field.

    Example
    -------
    >>> import tempfile, pathlib
    >>> from aimd.iq.template import protocol_template
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "iq.yaml"
    >>> _ = p.write_text(dump_protocol(protocol_template("1.2.3")))
    >>> load_protocol(p).device.version
    '1.2.3'
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            "protocol file not found", where=str(path), hint="write one with `aimd iq protocol-template > iq.yaml`"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise SchemaError(f"not valid YAML: {err}", where=str(path), hint="fix the YAML syntax") from err
    try:
        return IQProtocol.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        raise SchemaError(
            f"{first['msg']} ({err.error_count()} problem(s))",
            where=f"{path}:{_field_path(tuple(first['loc']))}",
            hint="compare with `aimd iq protocol-template` and `aimd iq protocol-schema`",
        ) from err


def dump_protocol(protocol: IQProtocol) -> str:
    """The protocol as YAML (keys in schema order)."""
    header = (
        "# aimd installation qualification protocol (002 §4.1–§4.3, App. A.2, App. B)\n"
        "# fill site, personnel and training records; validate with `aimd iq protocol-check`\n"
    )
    body = yaml.safe_dump(protocol.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=110)
    return header + body


__all__ = [
    "AREAS",
    "PROTOCOL_FORMAT",
    "RACI_ROLES",
    "AlertRule",
    "BaselineCase",
    "BaselineSpec",
    "Component",
    "DependencySpec",
    "Device",
    "FunctionalTestCase",
    "HardeningItem",
    "IQProtocol",
    "InstallStep",
    "LogSpec",
    "Person",
    "RaciRow",
    "Resources",
    "Scoring",
    "SecuritySpec",
    "SoftwareRequirement",
    "StaffingRequirement",
    "StressSpec",
    "TrainingRecord",
    "VersionManifest",
    "dump_protocol",
    "load_protocol",
    "protocol_schema",
]
