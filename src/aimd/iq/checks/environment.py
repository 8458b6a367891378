"""Environment and resources (002 §4.1.1, §6.1.1 a): hardware, OS, runtime and libraries, hardening.

Example
-------
>>> version_ok("3.11.7", ">=3.11"), version_ok("3.10.1", ">=3.11")
(True, False)
"""

from __future__ import annotations

import os
import platform
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psutil
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext


def version_ok(version: str, spec: str) -> bool:
    """Whether ``version`` satisfies the PEP 440 ``spec``."""
    try:
        return Version(version) in SpecifierSet(spec)
    except (InvalidVersion, InvalidSpecifier):
        return False


def release_python(ctx: IQContext) -> str | None:
    if ctx.prefix is None or ctx.prefix.current_version() is None:
        return None
    return str(ctx.prefix.current / "bin" / "python")


_VERSIONS = """
import importlib.metadata as md, json, platform, sys
out = {"python": platform.python_version()}
for name in sys.argv[1:]:
    try:
        out[name] = md.version(name)
    except md.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


def installed_versions(python: str, names: list[str]) -> dict[str, str | None]:
    """Python and package versions as the given interpreter sees them."""
    import json

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [python, "-c", _VERSIONS, *names], capture_output=True, text=True, check=True, env=env, timeout=120
    )
    return json.loads(proc.stdout)


def listening_process(url: str) -> psutil.Process | None:
    """The local process listening on the URL's port, when it runs on this machine."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return None
    for c in conns:
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
            return psutil.Process(c.pid)
    return None


class HardwareCheck(IQCheck):
    key = "environment.hardware"
    area = "resources"
    clause = "002 §4.1.1 a, §6.1.1 a"
    title = "CPU cores, memory and free disk against the minimum configuration"
    impact = "the device may be too slow or fail under load"
    fix = "provide hardware at least at the protocol's minimum configuration"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        low, high = ctx.protocol.environment_minimum, ctx.protocol.environment_recommended
        where = ctx.prefix.prefix if ctx.prefix else ctx.out
        where.mkdir(parents=True, exist_ok=True)
        have = {
            "cpu_cores": psutil.cpu_count(logical=True) or 0,
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 2),
            "disk_free_gb": round(shutil.disk_usage(where).free / 2**30, 2),
        }
        short = [k for k in have if have[k] < getattr(low, k)]
        below_recommended = [k for k in have if have[k] < getattr(high, k)]
        gpu = None
        if low.gpu:
            import torch

            gpu = torch.cuda.device_count()
            if gpu < 1:
                short.append("gpu")
        data = {
            "have": have,
            "minimum": low.model_dump(),
            "recommended": high.model_dump(),
            "gpus": gpu,
            "below_recommended": below_recommended,
        }
        return self.judge(
            not short,
            f"≥ {low.model_dump(exclude_none=True)}",
            str(have),
            reason=("below minimum: " + ", ".join(short))
            if short
            else (
                "meets minimum"
                + (f"; below recommended: {', '.join(below_recommended)}" if below_recommended else " and recommended")
            ),
            evidence=[ctx.write_evidence("hardware", data)],
            data=data,
        )


class SoftwareCheck(IQCheck):
    key = "environment.software"
    area = "resources"
    clause = "002 §4.1.1 b–c, §6.1.1 a"
    title = "OS, runtime and library versions against the protocol"
    impact = "untested software versions may change the device's behaviour"
    fix = "install the versions the protocol names"

    def run(self, ctx: IQContext) -> CheckResult:
        python = release_python(ctx) or os.environ.get("AIMD_IQ_PYTHON") or "python3"
        libs = [s.name for s in ctx.protocol.software if s.category == "library"]
        found = installed_versions(python, libs)
        rows, bad = [], []
        for s in ctx.protocol.software:
            if s.category == "os":
                have: str | None = platform.system()
                ok = have.lower().startswith(s.version.lower())
            elif s.category == "runtime" and s.name.lower() == "python":
                have = found["python"]
                ok = version_ok(have or "", s.version)
            elif s.category == "library":
                have = found.get(s.name)
                ok = have is not None and version_ok(have, s.version)
            else:
                rows.append(
                    {
                        "name": s.name,
                        "required": s.version,
                        "found": None,
                        "ok": None,
                        "note": "checked by the site (not visible from this machine)",
                    }
                )
                continue
            rows.append({"name": s.name, "required": s.version, "found": have, "ok": ok})
            if not ok:
                bad.append(f"{s.name} {have} (needs {s.version})")
        return self.judge(
            not bad,
            "every version within its requirement",
            f"{len(rows)} items, {len(bad)} outside",
            reason="; ".join(bad) or "all within requirements",
            evidence=[ctx.write_evidence("software", {"interpreter": python, "rows": rows})],
            data={"rows": rows},
        )


class LockCheck(IQCheck):
    key = "environment.lock"
    area = "resources"
    clause = "002 §4.1.1 c, §5.5.1 a"
    title = "installed packages equal the bundle's locked versions"
    impact = "the running code differs from the released code"
    fix = "re-install the release from its bundle"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        python = release_python(ctx)
        if python is None or ctx.prefix is None:
            return self.not_evaluated("no installed release (give --prefix)")
        lock = ctx.prefix.current / "bundle" / "requirements.lock"
        pins = dict(line.split(" ", 1)[0].split("==") for line in lock.read_text().splitlines() if "==" in line)
        found = installed_versions(python, list(pins))
        diff = {n: {"locked": v, "installed": found.get(n)} for n, v in pins.items() if found.get(n) != v}
        return self.judge(
            not diff,
            f"{len(pins)} packages as locked",
            f"{len(diff)} differ",
            reason="; ".join(f"{n}: {d['installed']} ≠ {d['locked']}" for n, d in diff.items())
            or "all packages as locked",
            evidence=[ctx.write_evidence("lock", {"locked": pins, "installed": found})],
        )


class NotRootCheck(IQCheck):
    key = "hardening.not_root"
    area = "security"
    clause = "002 §4.1.1 (hardened reference), §6.2.1 d"
    title = "the service does not run as root"
    impact = "a compromise of the service gives full control of the server"
    fix = "run the service as a dedicated unprivileged user"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.target is None:
            return self.not_evaluated("no target service (give --target)")
        proc = listening_process(ctx.target)
        if proc is None:
            return self.not_evaluated("the target's process is not on this machine or not visible")
        uids = proc.uids()
        info = {"pid": proc.pid, "name": proc.name(), "user": proc.username(), "euid": uids.effective}
        return self.judge(
            uids.effective != 0,
            "effective uid ≠ 0",
            f"{info['user']} (uid {uids.effective})",
            evidence=[ctx.write_evidence("service_user", info)],
            data=info,
        )


def _sensitive(path: Path) -> bool:
    """Keys, configuration and databases; a ``.pem`` only when it holds a private key (a certificate is public)."""
    if path.suffix == ".pem":
        return b"PRIVATE KEY" in path.read_bytes()[:65536]
    return path.suffix in {".key", ".db", ".sqlite", ".toml"} or path.name.endswith(".db-wal")


class FileModeCheck(IQCheck):
    key = "hardening.file_modes"
    area = "security"
    clause = "002 §4.1.1 (hardened reference), §5.1.2"
    title = "keys, configuration and database files are not readable by others"
    impact = "credentials or patient data can be read by any local user"
    fix = "chmod 600 the files named (or chown root:<service group> and chmod 640 what the service reads)"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.prefix is None:
            return self.not_evaluated("no installation prefix (give --prefix)")
        sensitive = [
            p
            for folder in (ctx.prefix.config, ctx.prefix.data)
            if folder.exists()
            for p in folder.rglob("*")
            if p.is_file() and _sensitive(p)
        ]
        if not sensitive:
            return self.not_evaluated("no key, configuration or database file in the prefix")
        account = ctx.prefix.service_account()
        rows = [_file_mode_row(ctx.prefix.prefix, p, account.gid if account else None) for p in sensitive]
        loose = [r for r in rows if not r["ok"]]
        shared = sum(r["shared"] for r in rows)
        return self.judge(
            not loose,
            "mode 0600; or 0640 owned by root with the service account's group",
            f"{len(loose)} of {len(rows)} too open"
            + (f"; {shared} read by the service account's group" if shared else ""),
            reason=", ".join(f"{r['path']} {r['mode']} {r['owner']}:{r['group']}" for r in loose)
            or ("all private" if not shared else f"all private or read-only for the group of {account.name}"),
            evidence=[ctx.write_evidence("file_modes", rows)],
        )


def _file_mode_row(prefix: Path, path: Path, service_gid: int | None) -> dict[str, Any]:
    """Private (no group/other bits), or shared read-only with the service account's group by root."""
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    shared = service_gid is not None and st.st_uid == 0 and st.st_gid == service_gid and mode & 0o077 == 0o040
    return {
        "path": str(path.relative_to(prefix)),
        "mode": oct(mode),
        "owner": st.st_uid,
        "group": st.st_gid,
        "shared": shared,
        "ok": not mode & 0o077 or shared,
    }


class DebugOffCheck(IQCheck):
    key = "hardening.debug_off"
    area = "security"
    clause = "002 §4.1.1 (hardened reference)"
    title = "debug and development mode are off"
    impact = "debug mode exposes internals and stack traces"
    fix = 'set env = "production" and no debug in config/aimd.toml'

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.prefix is None or not (ctx.prefix.config / "aimd.toml").exists():
            return self.not_evaluated("no config/aimd.toml in the prefix")
        cfg: dict[str, Any] = tomllib.loads((ctx.prefix.config / "aimd.toml").read_text(encoding="utf-8"))
        bad = []
        if cfg.get("env", "development") == "development":
            bad.append(f"env = {cfg.get('env', 'development (default)')!r}")
        if cfg.get("debug") is True or str(cfg.get("log_level", "")).upper() == "DEBUG":
            bad.append("debug on")
        return self.judge(
            not bad,
            "env production, debug off",
            ", ".join(bad) or "production, debug off",
            data={"env": cfg.get("env"), "debug": cfg.get("debug"), "log_level": cfg.get("log_level")},
        )


ENVIRONMENT_CHECKS: list[type[IQCheck]] = [
    HardwareCheck,
    SoftwareCheck,
    LockCheck,
    NotRootCheck,
    FileModeCheck,
    DebugOffCheck,
]

__all__ = [
    "ENVIRONMENT_CHECKS",
    "DebugOffCheck",
    "FileModeCheck",
    "HardwareCheck",
    "LockCheck",
    "NotRootCheck",
    "SoftwareCheck",
    "installed_versions",
    "listening_process",
    "version_ok",
]
