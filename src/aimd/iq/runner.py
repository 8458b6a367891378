"""The IQ run (002 §4.3, §5, §6): execute every check of the protocol against a prefix and/or a target,
score, and write the report. The run is itself a task in the prefix's event log (002 §5.4.1).

Example
-------
>>> [c.key for c in checks_for("quick")][:3]
['plan.process', 'plan.people', 'environment.hardware']
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aimd.core.errors import InvalidInputError
from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.environment import ENVIRONMENT_CHECKS
from aimd.iq.checks.links import LINK_CHECKS
from aimd.iq.checks.logs import AlertRulesCheck, LifecycleLogCheck, MetricsCheck, RetrievalRetentionCheck, scrape
from aimd.iq.checks.network import NETWORK_CHECKS
from aimd.iq.checks.plan import PLAN_CHECKS
from aimd.iq.checks.platform import PLATFORM_AUDIT_CHECKS, PLATFORM_CHECKS, retire_probe_accounts
from aimd.iq.checks.platform_ui import PLATFORM_UI_CHECKS
from aimd.iq.checks.reliability import RELIABILITY_CHECKS
from aimd.iq.checks.service import SERVICE_CHECKS
from aimd.iq.checks.versions import VERSION_CHECKS
from aimd.iq.events import EventLog, default_operator
from aimd.iq.install import Layout
from aimd.iq.protocol import IQProtocol, load_protocol
from aimd.iq.report import BasicInfo, IQReport, evidence_index, traceability, write_report
from aimd.iq.scoring import score

PROFILES = ("quick", "full")


def checks_for(profile: str) -> list[IQCheck]:
    """The checks in run order; logs and alert audits come last so they see what the run did."""
    if profile not in PROFILES:
        raise InvalidInputError(f"unknown profile {profile!r}", where="--profile", hint=f"use one of {PROFILES}")
    before = [
        *PLAN_CHECKS,
        *ENVIRONMENT_CHECKS,
        *VERSION_CHECKS,
        *SERVICE_CHECKS,
        *NETWORK_CHECKS,
        *LINK_CHECKS,
        *PLATFORM_CHECKS,
        *PLATFORM_UI_CHECKS,
        *RELIABILITY_CHECKS,
    ]
    return [cls() for cls in before]


def _admin_credentials(value: str | Path | dict[str, Any] | None) -> dict[str, Any] | None:
    """The platform admin's login (the JSON ``aimd platform init --json`` printed)."""
    if value is None or isinstance(value, dict):
        return value
    path = Path(value)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInputError(
            f"cannot read the platform admin's credentials: {err}",
            where=str(path),
            hint="pass the JSON printed by `aimd platform init --json` (username, password, totp_secret)",
        ) from None
    if not isinstance(data, dict) or not {"username", "password"} <= set(data):
        raise InvalidInputError(
            "the credentials need username and password (and totp_secret for an MFA role)",
            where=str(path),
            hint="pass the JSON printed by `aimd platform init --json`",
        )
    return data


def _scrape(ctx: IQContext) -> str | None:
    if ctx.target is None:
        return None
    try:
        return scrape(ctx)
    except Exception:
        return None


def run_iq(
    protocol: IQProtocol | str | Path,
    out: str | Path,
    *,
    prefix: str | Path | None = None,
    target: str | None = None,
    profile: str = "quick",
    token: str | None = None,
    platform: str | None = None,
    platform_admin: str | Path | dict[str, Any] | None = None,
    operator: str | None = None,
    pdf: bool = True,
    only: list[str] | None = None,
    progress: Any = None,
) -> IQReport:
    """Run the IQ and write ``iq-report.{json,html,pdf}`` into ``out``."""
    if prefix is None and target is None and platform is None:
        raise InvalidInputError(
            "nothing to qualify",
            where="--prefix/--target/--platform",
            hint="give the installation prefix, the service URL, the platform URL, or several",
        )
    proto = protocol if isinstance(protocol, IQProtocol) else load_protocol(protocol)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    layout = Layout(Path(prefix)) if prefix is not None else None
    if layout is not None and not layout.prefix.exists():
        raise InvalidInputError(
            "installation prefix not found",
            where=str(layout.prefix),
            hint="pass the --prefix given to `aimd iq install`",
        )
    ctx = IQContext(
        protocol=proto,
        out=out,
        prefix=layout,
        target=target.rstrip("/") if target else None,
        profile=profile,
        token=token,
        platform=platform.rstrip("/") if platform else None,
        platform_admin=_admin_credentials(platform_admin),
    )
    operator = operator or default_operator()
    started = datetime.now(UTC)
    start = time.perf_counter()
    task = None
    if layout is not None:
        task = EventLog(layout.events, operator=operator).task(
            "iq-run", {"out": str(out), "target": target, "profile": profile}
        )
        task.approved(operator)
        ctx.shared["own_task"] = task.id
    ctx.shared["metrics_before"] = _scrape(ctx)
    checks = [c for c in checks_for(profile) if not only or c.key in only or c.area in only]
    results: list[CheckResult] = []

    def execute(check: IQCheck) -> None:
        res = check.execute(ctx)
        results.append(res)
        if task is not None:
            task.executed(check.key, {"verdict": res.verdict.value, "seconds": res.seconds})
            ctx.shared.setdefault("executed_checks", []).append(check.key)
        if progress is not None:
            progress(res)

    for check in checks:
        execute(check)
    ctx.shared["metrics_after"] = _scrape(ctx)
    closing = [MetricsCheck(), AlertRulesCheck(), LifecycleLogCheck(), RetrievalRetentionCheck()]
    for check in [*closing, *(cls() for cls in PLATFORM_AUDIT_CHECKS)]:
        if not only or check.key in only or check.area in only:
            execute(check)
    retire_probe_accounts(ctx)
    scores = score(results, proto.scoring)
    basic = BasicInfo(
        report_id=f"IQ-{started.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        object=f"{proto.device.name} {proto.device.version}",
        purpose=proto.purpose,
        started=started.isoformat(timespec="seconds"),
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        place=proto.site,
        people=[{"name": p.name, "role": p.role, "party": p.party} for p in proto.personnel],
        conclusion=scores["conclusion"],
        conclusion_reasons=scores["reasons"],
    )
    report = IQReport(
        basic=basic,
        target={
            "prefix": str(layout.prefix) if layout else None,
            "url": ctx.target,
            "version": layout.current_version() if layout else None,
            "operator": operator,
        },
        profile=profile,
        scores=scores,
        checks=results,
        deviations=[r.deviation for r in results if r.deviation is not None],
        traceability=traceability(results),
        evidence=evidence_index(out),
        seconds=round(time.perf_counter() - start, 2),
    )
    write_report(report, out, pdf=pdf)
    if task is not None:
        task.completed({"conclusion": scores["conclusion"], "total": scores["total"], "report": str(out)})
    return report


__all__ = ["PROFILES", "checks_for", "run_iq"]
