"""Checks against the running annotation platform (002 §6.2.1 c–d, §6.2.2 f–g): MFA for privileged roles,
least privilege sampled from the role matrix, command audit with an intact hash chain, import integrity.

The run logs in with the site's admin account (``--platform-admin``: the JSON that ``aimd platform init
--json`` printed), creates one probe account per role (``iq-<role>-<run>``) and disables them again at
the end of the run. Nothing else on the platform is changed except the one case that the import check
imports into its own project.

Example
-------
>>> from aimd.iq.specs import default_platform_spec
>>> spec = default_platform_spec()
>>> denied_permissions(spec, "annotator")[:3]
['audit.archive', 'audit.read', 'case.import']
>>> "task.annotate" in denied_permissions(spec, "arbiter")  # the same request admits arbitration
False
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import secrets
from abc import abstractmethod
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from aimd.core.otp import next_code
from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.target import auth_headers, client, probe
from aimd.iq.specs import PlatformSpec


def denied_permissions(spec: PlatformSpec, role: str) -> list[str]:
    """Permissions whose probe request ``role`` must be refused: it holds neither it nor an alternative."""
    held = set(spec.roles.get(role, []))
    return sorted(p for p, pr in spec.probes.items() if p not in held and not held & set(pr.also))


def _totp(secret: str | None) -> str | None:
    """The next code of ``secret`` this process has not used (the platform takes each code once)."""
    return next_code(secret)


class PlatformSession:
    """The run's logins on the platform: the admin's and one probe account per role."""

    def __init__(self, ctx: IQContext) -> None:
        assert ctx.platform is not None and ctx.protocol.platform is not None
        self.ctx, self.spec = ctx, ctx.protocol.platform
        self.http = client(ctx, ctx.platform)
        state = ctx.shared.setdefault("platform", {"accounts": {}, "tokens": {}, "run": secrets.token_hex(3)})
        self.state: dict[str, Any] = state

    def __enter__(self) -> PlatformSession:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def login(self, account: dict[str, Any], *, second_factor: bool = True) -> httpx.Response:
        """Log ``account`` in, with the next code of its TOTP secret unless ``second_factor`` is off. A code
        the platform refuses as used already (someone else took it for this account) is followed by the
        next one, twice at most."""
        secret = account.get("totp_secret") if second_factor else None
        for _ in range(3):
            body = {"username": account["username"], "password": account["password"], "totp": _totp(secret)}
            resp = self.http.post(self.spec.login_path, json=body)
            if not (secret and resp.status_code == 401 and "used already" in resp.text):
                break
        return resp

    def token(self, who: str) -> str:
        """A bearer token for ``"admin"`` or a probe account's role (one login each, reused)."""
        if who not in self.state["tokens"]:
            account = self.ctx.platform_admin if who == "admin" else self.account(who)
            assert account is not None
            resp = self.login(account)
            if resp.status_code != 200:
                raise RuntimeError(f"login of {account['username']} answered {resp.status_code}: {resp.text[:200]}")
            self.state["tokens"][who] = resp.json()["token"]
        return str(self.state["tokens"][who])

    def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, headers=auth_headers(self.token(who)), **kwargs)

    def account(self, role: str) -> dict[str, Any]:
        """The run's probe account for ``role``, created by the admin on first use."""
        if role not in self.state["accounts"]:
            password = secrets.token_urlsafe(18) + "a1"
            name = f"iq-{role}-{self.state['run']}"
            resp = self.call(
                "admin", "POST", self.spec.users_path, json={"username": name, "role": role, "password": password}
            )
            if resp.status_code >= 300:
                raise RuntimeError(f"creating {name} answered {resp.status_code}: {resp.text[:200]}")
            self.state["accounts"][role] = {
                "username": name,
                "password": password,
                "totp_secret": resp.json().get("totp_secret"),
            }
        return dict(self.state["accounts"][role])


def retire_probe_accounts(ctx: IQContext) -> list[str]:
    """Disable the run's probe accounts (end of the run); returns their names."""
    state = ctx.shared.get("platform")
    if not state or not state["accounts"] or ctx.platform is None or ctx.protocol.platform is None:
        return []
    names = [a["username"] for a in state["accounts"].values()]
    with PlatformSession(ctx) as session:
        for name in names:
            session.call("admin", "PATCH", f"{ctx.protocol.platform.users_path}/{name}", json={"disabled": True})
    return names


class PlatformCheck(IQCheck):
    """Not evaluated without a platform URL, the admin's credentials or the protocol's platform section."""

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.platform is None:
            return self.not_evaluated("no annotation platform (give --platform)")
        if ctx.protocol.platform is None:
            return self.not_evaluated("the protocol has no platform section")
        if not ctx.platform_admin:
            return self.not_evaluated("no admin credentials for the platform (give --platform-admin)")
        try:
            httpx.get(ctx.platform.rstrip("/") + "/v2/health/live", timeout=5, verify=False)
        except httpx.HTTPError as err:
            return self.not_evaluated(f"platform {ctx.platform} not reachable: {err}")
        with PlatformSession(ctx) as session:
            return self.check(ctx, session)

    @abstractmethod
    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        """The check itself, run once its preconditions hold."""


class MfaCheck(PlatformCheck):
    key = "security.mfa"
    area = "security"
    clause = "002 §6.2.1 c, §5.1.1"
    title = "privileged roles need a second factor: password-only login refused, password + TOTP accepted"
    impact = "a stolen password alone opens a privileged account"
    fix = "list every privileged role in the platform's mfa_roles and enrol their accounts in TOTP"
    critical = True

    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        spec = session.spec
        rows = []
        for role in spec.mfa_roles:
            account = ctx.platform_admin if role == "admin" else session.account(role)
            assert account is not None
            alone = session.login(account, second_factor=False)
            if alone.status_code in (401, 403):
                session.state.setdefault("refused_logins", []).append(account["username"])
            enrolled = bool(account.get("totp_secret"))
            both = session.login(account)
            if both.status_code == 200:
                session.state["tokens"][role] = both.json()["token"]
            rows.append(
                {
                    "role": role,
                    "account": account["username"],
                    "password_only_status": alone.status_code,
                    "password_only_refused": alone.status_code in (401, 403),
                    "totp_enrolled": enrolled,
                    "with_totp_status": both.status_code,
                }
            )
        bad = [
            f"{r['role']}: password-only {r['password_only_status']}, TOTP enrolled {r['totp_enrolled']}"
            for r in rows
            if not (r["password_only_refused"] and r["totp_enrolled"] and r["with_totp_status"] == 200)
        ]
        return self.tally(
            ctx,
            rows,
            bad,
            expected=f"password-only refused and password + TOTP accepted for {', '.join(spec.mfa_roles)}",
            counted="privileged roles enforce MFA",
            found=("no second factor", "every privileged role enforces MFA"),
            evidence="platform_mfa",
            data_key="roles",
            sep="; ",
        )


class LeastPrivilegeCheck(PlatformCheck):
    key = "security.least_privilege"
    area = "security"
    clause = "002 §6.2.1 d, §5.1.1"
    title = "least privilege: each role, logged in, is refused actions outside its rights (sampled from the matrix)"
    impact = "an account can do what its role must not (privilege escalation, no separation of duties)"
    fix = "put the permission dependency of the protocol's matrix on the route; correct the role's rights"
    critical = True

    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        spec = session.spec
        rng = random.Random(f"{ctx.protocol.protocol_id}:{session.state['run']}")
        rows = []
        for role in sorted(spec.roles):
            denied = denied_permissions(spec, role)
            if ctx.profile != "full":
                denied = sorted(rng.sample(denied, min(spec.samples_per_role, len(denied))))
            token = session.token(role)
            for perm in denied:
                pr = spec.probes[perm]
                row = probe(
                    session.http,
                    pr.method,
                    pr.path,
                    label=f"{role} → {perm}",
                    headers=auth_headers(token),
                    json={} if pr.method in {"POST", "PUT", "PATCH"} else None,
                )
                rows.append({**row, "role": role, "permission": perm})
        ctx.shared.setdefault("faults_injected", []).append("illegal_access")
        allowed = [f"{r['try']} ({r['method']} {r['path']} → {r['status']})" for r in rows if not r["refused"]]
        if not rows:
            return self.not_evaluated("the role matrix denies nothing that has a probe request")
        return self.tally(
            ctx,
            rows,
            allowed,
            expected="every out-of-role request refused (401/403)",
            counted=f"refused across {len(spec.roles)} roles",
            found=("let through", "all refused"),
            evidence="platform_least_privilege",
            data_key="probes",
            sep="; ",
        )


class CommandAuditCheck(PlatformCheck):
    key = "logs.command_audit"
    area = "logs"
    clause = "002 §6.2.1 d, §6.2.2 g, §5.4.1"
    title = "the platform's audit chain verifies and holds the run's own commands with time, person and action"
    impact = "key operations cannot be traced, or the audit log was changed unnoticed"
    fix = "restore the audit log from the last verified backup and find who changed it; audit every command"
    critical = True

    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        spec = session.spec
        verify = session.call("admin", "GET", spec.audit_verify_path)
        chain = verify.json() if verify.status_code == 200 else {"ok": False, "status": verify.status_code}
        expected = []
        for account in session.state["accounts"].values():
            expected += [("user.create", account["username"]), ("login", account["username"])]
        expected += [("login.failed", name) for name in session.state.get("refused_logins", [])]
        if not expected:
            session.account("intake")  # a command of this run that must be audited
            return self.check(ctx, session)
        found, missing = [], []
        for action, name in expected:
            entries = session.call(
                "admin", "GET", spec.audit_path, params={"action": action, "subject": f"user:{name}", "limit": 5}
            )
            rows = entries.json() if entries.status_code == 200 else []
            complete = [e for e in rows if e.get("actor") and e.get("timestamp") and e.get("action") == action]
            (found if complete else missing).append(f"{action} {name}")
        data = {"chain": chain, "found": found, "missing": missing}
        problems = ([] if chain.get("ok") else [f"audit chain broken at entry {chain.get('first_bad_index')}"]) + [
            f"not audited: {m}" for m in missing
        ]
        return self.judge(
            not problems,
            "chain verifies; every command of this run audited with actor, time and action",
            f"chain {'verifies' if chain.get('ok') else 'BROKEN'} over {chain.get('entries')} entries; "
            f"{len(found)} of {len(expected)} commands found",
            reason="; ".join(problems) or "complete",
            evidence=[ctx.write_evidence("platform_audit", data)],
            data=data,
        )


def _voxel_sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


class ImportIntegrityCheck(PlatformCheck):
    key = "security.import_integrity"
    area = "security"
    clause = "002 §6.2.2 f"
    title = "an imported case is stored unaltered: file hash as declared, platform hash and read-back voxels equal"
    impact = "images are changed or truncated on the way into the platform"
    fix = "re-transfer the data with its checksum manifest; investigate the import path"
    critical = True

    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        from aimd.imaging.nifti_io import read_nifti

        spec = session.spec
        if not spec.import_file:
            return self.not_evaluated("the protocol's platform section names no import_file")
        source = Path(spec.import_file)
        raw = source.read_bytes()
        file_sha = hashlib.sha256(raw).hexdigest()
        project = session.call(
            "admin",
            "POST",
            "/api/v1/projects",
            json={
                "name": f"iq-import-{session.state['run']}",
                "task_definition": {
                    "goal": "installation qualification: import integrity",
                    "modalities": ["CT"],
                    "objects_and_outputs": "none: the case is read back, not annotated",
                    "alignment_rules": "none",
                    "qc_and_traceability": "IQ report evidence",
                },
                "label_map": {"1": "LUNG"},
                "readers": 1,
            },
        ).raise_for_status()
        pid = project.json()["id"]
        imported = session.call(
            "admin",
            "POST",
            f"/api/v1/projects/{pid}/cases",
            json={
                "case_key": f"iq-{source.name}",
                "image_nifti_b64": base64.b64encode(raw).decode(),
                "source": {"file": source.name, "sha256": file_sha},
            },
        ).raise_for_status()
        image = imported.json()["image"]
        annotator = session.account("annotator")["username"]
        session.call(
            "admin", "POST", f"/api/v1/projects/{pid}/distribute", json={"annotators": [annotator]}
        ).raise_for_status()
        task = session.call("annotator", "GET", "/api/v1/tasks", params={"project": pid}).raise_for_status().json()[0]
        back = session.call("annotator", "GET", f"/api/v1/tasks/{task['id']}/image")
        stored = np.load(io.BytesIO(back.content), allow_pickle=False) if back.status_code == 200 else None
        source_voxels = _voxel_sha256(np.asarray(read_nifti(source).array))
        data = {
            "file": str(source),
            "declared_sha256": spec.import_sha256,
            "file_sha256": file_sha,
            "platform_nifti_sha256": image.get("nifti_sha256"),
            "source_voxels_sha256": source_voxels,
            "read_back_status": back.status_code,
            "read_back_voxels_sha256": _voxel_sha256(stored) if stored is not None else None,
            "project": pid,
        }
        problems = []
        if spec.import_sha256 and spec.import_sha256.lower() != file_sha:
            problems.append("the file differs from the SHA-256 its provider declared")
        if data["platform_nifti_sha256"] != file_sha:
            problems.append("the platform recorded another file hash")
        if data["read_back_voxels_sha256"] != source_voxels:
            problems.append("the voxels read back differ from the source")
        return self.judge(
            not problems,
            "declared = file = platform SHA-256; voxels read back identical",
            f"file {file_sha[:12]}…, platform {str(data['platform_nifti_sha256'])[:12]}…, "
            f"voxels {'identical' if data['read_back_voxels_sha256'] == source_voxels else 'DIFFERENT'}",
            reason="; ".join(problems) or "unaltered",
            evidence=[ctx.write_evidence("platform_import", data)],
            data=data,
        )


PLATFORM_CHECKS: list[type[IQCheck]] = [MfaCheck, LeastPrivilegeCheck, ImportIntegrityCheck]
PLATFORM_AUDIT_CHECKS: list[type[IQCheck]] = [CommandAuditCheck]

__all__ = [
    "PLATFORM_AUDIT_CHECKS",
    "PLATFORM_CHECKS",
    "CommandAuditCheck",
    "ImportIntegrityCheck",
    "LeastPrivilegeCheck",
    "MfaCheck",
    "PlatformSession",
    "denied_permissions",
    "retire_probe_accounts",
]
