"""Protocol sections for the network-fault drills (002 §6.3.1 b) and the annotation platform's security,
audit and import checks (002 §5.1, §5.4, §6.2).

Example
-------
>>> [f.name for f in default_network_faults()]
['latency', 'bandwidth', 'reset', 'blackhole']
>>> sorted(default_platform_spec().mfa_roles)
['admin', 'arbiter', 'qc', 'reviewer']
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkFault(_Model):
    """One network-fault scenario between the IQ client and the service, with its expected behaviour."""

    name: str
    latency_ms: float = Field(0, ge=0)
    jitter_ms: float = Field(0, ge=0)
    bandwidth_kbps: float | None = Field(None, gt=0)
    reset_rate: float = Field(0, ge=0, le=1, description="share of connections reset (TCP RST)")
    drop_rate: float = Field(0, ge=0, le=1, description="share of connections black-holed (no answer)")
    requests: int = Field(8, ge=1, description="baseline requests sent through the fault")
    timeout_s: float = Field(5.0, gt=0, description="the client's timeout per request")
    expect: Literal["served", "clear_error"] = Field(
        description="served: every request answered correctly within the limits; clear_error: faulted requests "
        "end in a connection error or timeout (never a wrong answer or a hang), the rest are correct"
    )
    min_success_rate: float = Field(1.0, ge=0, le=1, description="for 'served'")
    max_mean_response_s: float | None = Field(None, gt=0, description="for 'served': mean response under the fault")
    seed: int = 0

    @model_validator(mode="after")
    def _a_fault(self) -> NetworkFault:
        if not (self.latency_ms or self.jitter_ms or self.bandwidth_kbps or self.reset_rate or self.drop_rate):
            raise ValueError(f"network fault {self.name!r} injects nothing")
        if self.drop_rate + self.reset_rate > 1:
            raise ValueError("drop_rate + reset_rate must be at most 1")
        return self


def default_network_faults() -> list[NetworkFault]:
    """aimd's scenarios: latency with jitter, a slow link, resets, a black hole."""
    return [
        NetworkFault(name="latency", latency_ms=100, jitter_ms=20, expect="served", max_mean_response_s=3.0),
        NetworkFault(name="bandwidth", bandwidth_kbps=2000, expect="served", max_mean_response_s=5.0),
        NetworkFault(name="reset", reset_rate=0.5, expect="clear_error", seed=1),
        NetworkFault(name="blackhole", drop_rate=0.5, timeout_s=2.0, requests=4, expect="clear_error", seed=2),
    ]


class LinkFault(_Model):
    """One fault on a link of the service to its PACS or database, with the behaviour expected of the service."""

    name: str
    link: Literal["pacs", "database"]
    latency_ms: float = Field(0, ge=0)
    jitter_ms: float = Field(0, ge=0)
    reset_rate: float = Field(0, ge=0, le=1, description="share of new connections reset (TCP RST)")
    drop_rate: float = Field(0, ge=0, le=1, description="share of new connections stalled (no answer)")
    loss_pct: float = Field(0, ge=0, le=100, description="packet loss (tc netem; not evaluated without netem)")
    cut: bool = Field(False, description="the link is down: connections refused, open ones severed")
    cut_s: float | None = Field(None, gt=0, description="a cut lifted after this many seconds (a brief outage)")
    mode: Literal["sync", "async"] = Field("sync", description="async: jobs (Prefer: respond-async), polled")
    requests: int = Field(2, ge=1)
    timeout_s: float = Field(60.0, gt=0, description="the client's timeout per request (or per job)")
    expect: Literal["served", "clear_error"] = Field(
        description="served: every request (job) answered correctly — the service rides out the fault (retries "
        "with backoff); clear_error: every request ends within the timeout in a 5xx answer naming the link "
        "(a 503 carries Retry-After), none hangs or answers wrongly, the service serves again once the fault is lifted"
    )
    max_mean_response_s: float | None = Field(None, gt=0, description="for 'served'")
    alert: bool | None = Field(None, description="the link's alert rules must fire (default: for clear_error)")
    seed: int = 0

    @model_validator(mode="after")
    def _a_fault(self) -> LinkFault:
        if not (self.latency_ms or self.jitter_ms or self.reset_rate or self.drop_rate or self.loss_pct or self.cut):
            raise ValueError(f"link fault {self.name!r} injects nothing")
        if self.cut_s is not None and not self.cut:
            raise ValueError(f"link fault {self.name!r}: cut_s needs cut: true")
        return self

    @property
    def alert_expected(self) -> bool:
        return self.expect == "clear_error" if self.alert is None else self.alert

    @property
    def fault_key(self) -> str:
        """The alert rules' ``fault`` this scenario exercises: ``pacs_link`` or ``database_link``."""
        return f"{self.link}_link"


class LinkDrill(_Model):
    """The service's own links qualified (002 §6.3.1 b): ``aimd serve`` is started with its PACS and database
    reached through fault injectors, and each scenario is run against it."""

    model: str = Field(description="the --model value the site serves, e.g. lesions=device-lesions")
    pacs_url: str | None = Field(None, description="the PACS's DICOMweb root (user/password: AIMD_PACS_USER/…)")
    study_uid: str | None = Field(None, description="a study in the PACS the main flow runs on")
    series_uid: str | None = None
    store: bool = Field(True, description="store the SEG and SR back to the PACS in every request")
    answer_field: str | None = Field(None, description="dotted field of the answer compared with the clean run")
    database_url: str | None = Field(
        None, description="the service database (postgresql://…); none or SQLite: no network link to fault"
    )
    serve_args: list[str] = Field(
        default_factory=list, description="the site's other aimd serve options (e.g. --pacs-retries 3)"
    )
    recover_within_s: float = Field(60.0, gt=0)
    faults: list[LinkFault] = Field(min_length=1)

    @model_validator(mode="after")
    def _series(self) -> LinkDrill:
        if self.pacs_url and not (self.study_uid and self.series_uid):
            raise ValueError("links: a pacs_url needs the study_uid and series_uid the main flow pulls")
        return self


def default_link_faults() -> list[LinkFault]:
    """aimd's link scenarios: PACS latency, flaky connections, a brief outage bridged by retries, a long outage;
    database latency and outage; packet loss on both links (netem)."""
    return [
        LinkFault(name="pacs latency", link="pacs", latency_ms=100, jitter_ms=30, expect="served"),
        LinkFault(name="pacs flaky", link="pacs", reset_rate=0.5, requests=3, expect="served", seed=1),
        LinkFault(name="pacs brief outage", link="pacs", cut=True, cut_s=1.0, mode="async", expect="served"),
        LinkFault(name="pacs outage", link="pacs", cut=True, expect="clear_error"),
        LinkFault(name="pacs packet loss", link="pacs", loss_pct=20, expect="served"),
        LinkFault(name="database latency", link="database", latency_ms=50, jitter_ms=20, expect="served"),
        LinkFault(name="database outage", link="database", cut=True, expect="clear_error"),
    ]


class RoleProbe(_Model):
    """The request that exercises one permission (path parameters filled with ``1``)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    also: list[str] = Field(
        default_factory=list, description="other permissions that admit the same request (a role holding one is let in)"
    )


class PlatformSpec(_Model):
    """What the platform checks expect: MFA roles, the role matrix, probes per permission, the import case."""

    login_path: str = "/api/v1/auth/login"
    users_path: str = "/api/v1/users"
    audit_verify_path: str = "/api/v1/audit/verify"
    audit_path: str = "/api/v1/audit"
    mfa_roles: list[str] = Field(description="roles that must log in with a second factor (TOTP)")
    roles: dict[str, list[str]] = Field(description="role → the permissions it holds (least privilege)")
    probes: dict[str, RoleProbe] = Field(description="permission → a request that needs it")
    samples_per_role: int = Field(4, ge=1, description="denied permissions tried per role (quick profile)")
    import_file: str | None = Field(None, description="a de-identified NIfTI case imported to check its hash")
    import_sha256: str | None = Field(None, description="the SHA-256 the data provider declared for import_file")
    ui_role: str = Field("qc", description="the role whose probe account walks the browser workspace's menus")
    ui_screens: dict[str, str] = Field(
        default_factory=lambda: {"#/tasks": "task-list", "#/admin": "admin"},
        description="menu link (href) the ui_role must see → the id of the element its screen shows",
    )
    session_probe_path: str = Field(
        "/api/v1/tasks", description="a route any signed-in account may read: a logged-out token must get 401"
    )

    @field_validator("mfa_roles")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _roles_known(self) -> PlatformSpec:
        unknown = sorted((set(self.mfa_roles) | {self.ui_role}) - set(self.roles))
        if unknown:
            raise ValueError(f"mfa_roles / ui_role {unknown} are not roles of the matrix {sorted(self.roles)}")
        orphans = sorted({p for ps in self.roles.values() for p in ps} - set(self.probes))
        if orphans:
            raise ValueError(f"permissions {orphans} have no probe request")
        return self


_MATRIX = {
    "intake": ["project.read", "case.import"],
    "annotator": ["project.read", "task.annotate", "prelabel.run", "change.request"],
    "reviewer": ["project.read", "progress.read", "task.review", "diff.read", "change.request"],
    "qc": ["project.read", "progress.read", "qc.sample", "diff.read", "audit.read", "export.run"],
    "arbiter": ["project.read", "task.arbitrate", "diff.read"],
    "admin": [
        "user.manage",
        "project.create",
        "project.read",
        "project.freeze",
        "project.delete",
        "project.members",
        "progress.read",
        "case.import",
        "task.distribute",
        "diff.read",
        "model.register",
        "prelabel.run",
        "change.decide",
        "export.run",
        "audit.read",
        "audit.archive",
    ],
}

_PROBES: dict[str, tuple] = {
    "user.manage": ("GET", "/api/v1/users"),
    "project.create": ("POST", "/api/v1/projects"),
    "project.read": ("GET", "/api/v1/projects"),
    "project.freeze": ("POST", "/api/v1/projects/1/freeze"),
    "project.delete": ("DELETE", "/api/v1/projects/1"),
    "project.members": ("GET", "/api/v1/projects/1/members"),
    "progress.read": ("GET", "/api/v1/projects/1/progress"),
    "case.import": ("POST", "/api/v1/projects/1/cases"),
    "task.distribute": ("POST", "/api/v1/projects/1/distribute"),
    "task.annotate": ("POST", "/api/v1/tasks/1/submit", ["task.arbitrate"]),
    "task.review": ("POST", "/api/v1/tasks/1/review"),
    "task.arbitrate": ("PUT", "/api/v1/tasks/1/draft", ["task.annotate"]),
    "qc.sample": ("POST", "/api/v1/projects/1/qc/sample"),
    "diff.read": ("GET", "/api/v1/cases/1/submissions"),
    "model.register": ("POST", "/api/v1/models"),
    "prelabel.run": ("POST", "/api/v1/tasks/1/prelabel"),
    "change.request": ("POST", "/api/v1/projects/1/change-requests"),
    "change.decide": ("POST", "/api/v1/change-requests/1/decide"),
    "export.run": ("POST", "/api/v1/projects/1/export"),
    "audit.read": ("GET", "/api/v1/audit"),
    "audit.archive": ("POST", "/api/v1/audit/archive"),
}


def default_platform_spec() -> PlatformSpec:
    """aimd's annotation platform: the role matrix of its documentation and one probe per permission."""
    return PlatformSpec(
        mfa_roles=["admin", "reviewer", "arbiter", "qc"],
        roles={k: list(v) for k, v in _MATRIX.items()},
        probes={
            p: RoleProbe(method=v[0], path=v[1], also=list(v[2]) if len(v) > 2 else [])  # type: ignore[arg-type, misc]
            for p, v in _PROBES.items()
        },
    )


__all__ = [
    "LinkDrill",
    "LinkFault",
    "NetworkFault",
    "PlatformSpec",
    "RoleProbe",
    "default_link_faults",
    "default_network_faults",
    "default_platform_spec",
]
