"""The installation qualification protocol (002 §3.4, §4.1–§4.3, App. A.2, App. B) as a schema-checked YAML.

:class:`IQProtocol` is what the provider hands the site: environment minimum and recommended
configuration with a hardened reference (§4.1.1), the install steps a–h (§4.1.2), staffing,
personnel and training records (§4.1.3, §6.1.2), the RACI matrix (App. A.2), functional test cases
(§4.3.1), the baseline dataset with its validated reference results (§4.3.2), stress levels and
limits (§6.4.2), alert rules (§6.5.2), the version manifest (§5.5) and the scoring weights (§6.1).
Its JSON Schema is exported from the models (:func:`protocol_schema`), never written by hand.

Example
-------
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

from aimd import __version__
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.iq.specs import NetworkFault, PlatformSpec, default_network_faults, default_platform_spec

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
    method: Literal["GET", "POST"] = "GET"
    path: str = Field(description="URL path on the target, e.g. /v2/health/ready")
    expect_status: int = 200
    expect_text: str | None = None
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


def _raci() -> list[RaciRow]:
    # 002 App. A.2, columns in RACI_ROLES order
    table = {
        "feasibility analysis": "ACRII",
        "requirements analysis": "ARCCI",
        "solution design": "ICARC",
        "environment preparation": "I-AC-",
        "trial run": "ICARC",
        "test and verification": "CCARR",
        "problem handling": "ACRRC",
        "training support": "C-AR-",
        "acceptance": "RCRCC",
    }
    rows = []
    for activity, codes in table.items():
        roles = dict(zip(RACI_ROLES, codes, strict=True))
        if "A" not in codes:  # App. A.2 names no A for acceptance: the user's project manager signs it off
            roles["user_project_manager"] = "A"
        rows.append(RaciRow(activity=activity, roles=roles))  # type: ignore[arg-type]
    return rows


def protocol_template(version: str = __version__) -> IQProtocol:
    """The protocol aimd's own device ships (inference service and annotation platform); sites fill people."""
    steps = [
        (
            "a",
            "installation preparation",
            ["review this protocol", "confirm environment", "assign roles", "train installers"],
            "provider_project_manager",
        ),
        ("b", "hardware installation", ["rack server", "connect network and storage"], "user_project_manager"),
        (
            "c",
            "software installation",
            ["install OS packages and Python 3.11", "aimd iq install BUNDLE --prefix /opt/aimd"],
            "provider_install_engineer",
        ),
        (
            "d",
            "system configuration",
            ["write /opt/aimd/config/aimd.toml (TLS, auth, database)", "set key and database file modes 0600"],
            "provider_install_engineer",
        ),
        (
            "e",
            "functional confirmation",
            ["aimd iq run --protocol iq.yaml (function checks)"],
            "provider_quality_expert",
        ),
        ("f", "baseline performance", ["aimd iq run (baseline on the baseline dataset)"], "provider_quality_expert"),
        (
            "g",
            "problem handling",
            [
                "record deviations with impact and corrective action",
                "aimd iq rollback --prefix /opt/aimd when a fix needs a new release",
            ],
            "provider_project_manager",
        ),
        ("h", "result confirmation", ["sign the IQ report", "hand over"], "user_project_manager"),
    ]
    return IQProtocol(
        protocol_id=f"IQ-AIMD-{version}",
        purpose="Confirm that aimd's inference service and annotation platform are installed correctly and "
        "perform at baseline (002 §3.2 a–d).",
        site="<hospital and room>",
        device=Device(
            name="aimd inference service and annotation platform",
            version=version,
            manufacturer="aimd project",
            intended_use="CT lesion segmentation and data annotation",
        ),
        environment_minimum=Resources(cpu_cores=2, memory_gb=8, disk_free_gb=10, network_mbps=100),
        environment_recommended=Resources(
            cpu_cores=8, memory_gb=32, disk_free_gb=200, gpu="optional: one CUDA GPU", network_mbps=1000
        ),
        software=[
            SoftwareRequirement(
                category="os",
                name="Linux",
                version="Linux",
                note="Debian 12 or later; reference hardening: no root services, firewall, auditd",
            ),
            SoftwareRequirement(category="runtime", name="python", version=">=3.11"),
            SoftwareRequirement(category="library", name="torch", version=">=2.1"),
            SoftwareRequirement(category="library", name="onnxruntime", version=">=1.17"),
            SoftwareRequirement(category="library", name="pydantic", version=">=2.6"),
            SoftwareRequirement(
                category="database", name="PostgreSQL", version=">=15", note="or the embedded SQLite on one workstation"
            ),
        ],
        hardening=[
            HardeningItem(key="not_root", expected="service runs as a dedicated unprivileged user"),
            HardeningItem(key="key_file_mode", expected="0600", note="signing and TLS keys"),
            HardeningItem(key="database_file_mode", expected="0600"),
            HardeningItem(key="debug_off", expected="debug = false in aimd.toml"),
            HardeningItem(key="tls_on", expected="https with TLS 1.2 or later"),
        ],
        install_steps=[InstallStep(id=i, title=t, tasks=tasks, responsible=r) for i, t, tasks, r in steps],
        raci=_raci(),
        staffing=[
            StaffingRequirement(role="project manager", count=1, party="both", skills="IQ planning, acceptance"),
            StaffingRequirement(
                role="install engineer",
                count=1,
                party="provider",
                skills="Linux, Python, PostgreSQL, TLS",
                qualification_required=True,
            ),
            StaffingRequirement(role="quality expert", count=1, party="provider", skills="test execution, 002"),
            StaffingRequirement(role="clinical expert", count=1, party="user", skills="radiology reading"),
        ],
        functional_tests=[
            FunctionalTestCase(
                id="F1",
                kind="interface",
                description="service answers liveness",
                path="/v2/health/live",
                acceptance="HTTP 200",
            ),
            FunctionalTestCase(
                id="F2",
                kind="interface",
                description="readiness: database and PACS connected",
                path="/v2/health/ready",
                acceptance="HTTP 200",
            ),
            FunctionalTestCase(
                id="F3",
                kind="interface",
                description="OpenAPI document served",
                path="/openapi.json",
                expect_text="openapi",
                acceptance="HTTP 200 with an OpenAPI body",
            ),
            FunctionalTestCase(
                id="F4",
                kind="main_flow",
                description="models listed to an authorised caller",
                path="/v2/models",
                expect_text="models",
                acceptance="HTTP 200 listing the models",
            ),
        ],
        baseline=BaselineSpec(
            dataset="aimd phantom baseline cases (fill cases: file + validated finding count)",
            reference_source="phantom ground truth",
            endpoint="/v2/models/lesion/infer",
            answer_field="findings.#",
            max_mean_seconds_per_case=2.0,
            concurrency_users=4,
            concurrency_requests=40,
            min_success_rate=0.99,
            max_mean_response_s=1.0,
            max_cpu_percent=95,
            max_memory_mb=4096,
        ),
        stress=StressSpec(
            levels=[1, 2, 4, 8], requests_per_user=5, p95_limit_s=2.0, max_error_rate=0.01, expected_max_concurrency=4
        ),
        alert_rules=[
            AlertRule(
                name="UnauthorisedAccess",
                metric="aimd_requests_total",
                labels={"code": "401"},
                op=">",
                threshold=0,
                severity="warning",
                fault="illegal_access",
            ),
            AlertRule(
                name="ServerErrors",
                metric="aimd_requests_total",
                labels={"code": "500"},
                op=">",
                threshold=0,
                severity="critical",
                fault="dependency_stopped",
            ),
        ],
        network_faults=default_network_faults(),
        platform=default_platform_spec(),
        required_metrics=["aimd_requests_total", "aimd_request_seconds", "aimd_inferences_total"],
        logs=LogSpec(retention_days=3650),
        version_manifest=VersionManifest(
            version=version,
            components=[
                Component(name="aimd", kind="code", version=version),
                Component(name="user manual", kind="document", version=version),
            ],
        ),
        scoring=Scoring(
            weights={
                "resources": 15,
                "function": 15,
                "security": 20,
                "reliability": 20,
                "performance": 10,
                "logs": 10,
                "versions": 10,
            },
            pass_score=80,
        ),
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def load_protocol(path: str | Path) -> IQProtocol:
    """Read and validate a protocol YAML; errors name the file and the field.

    Example
    -------
    >>> import tempfile, pathlib
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
    "protocol_template",
]
