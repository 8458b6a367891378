"""The protocol aimd ships for its own device (002 §4.1–§4.3, App. A.2): the inference service and the
annotation platform, with the install steps a–h, the RACI matrix and the checks' acceptance limits.
Sites fill in their people and records.

Example
-------
>>> p = protocol_template()
>>> [s.id for s in p.install_steps]
['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']
"""

from __future__ import annotations

from aimd import __version__
from aimd.iq.protocol import (
    RACI_ROLES,
    AlertRule,
    BaselineSpec,
    Component,
    Device,
    FunctionalTestCase,
    HardeningItem,
    InstallStep,
    IQProtocol,
    LogSpec,
    RaciRow,
    Resources,
    Scoring,
    SoftwareRequirement,
    StaffingRequirement,
    StressSpec,
    VersionManifest,
)
from aimd.iq.specs import default_network_faults, default_platform_spec


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


def _status_rule(name: str, code: str, severity: str, fault: str | None, route: str | None = None) -> AlertRule:
    """An alert on any answer with HTTP status ``code`` (of ``route`` only, when given; the service's
    request counter)."""
    return AlertRule(
        name=name,
        metric="aimd_requests_total",
        labels={"code": code, **({"route": route} if route else {})},
        op=">",
        threshold=0,
        severity=severity,  # type: ignore[arg-type]
        fault=fault,
    )


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
            FunctionalTestCase(
                id="U1",
                kind="ui",
                system="platform",
                description="the annotation platform's workspace opens on its login screen",
                path="/",
                expect_text='id="password"',
                acceptance="the page draws the login form (user name, password, one-time code) in a browser",
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
            _status_rule("UnauthorisedAccess", "401", "warning", "illegal_access"),
            _status_rule("ServerErrors", "500", "critical", None),
            # a stopped database or PACS: readiness answers 503 naming it (a request that needs it: 502/503)
            _status_rule("ServiceNotReady", "503", "critical", "dependency_stopped", route="/v2/health/ready"),
            _status_rule("PacsLinkErrors", "502", "critical", "pacs_link"),
            _status_rule("DatabaseUnavailable", "503", "critical", "database_link"),
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


__all__ = ["protocol_template"]
