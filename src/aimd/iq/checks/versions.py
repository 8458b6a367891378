"""Version consistency (002 §5.5.1 a–c, §6.6.1 d–f): one version everywhere, no changed or extra file.

Example
-------
>>> record_hash(b"")
'sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU'
"""

from __future__ import annotations

import base64
import hashlib
import json
from abc import abstractmethod
from pathlib import Path
from typing import Any

from aimd.iq.bundle import bundle_problems, check_version_name, notes_problems
from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.environment import installed_versions
from aimd.iq.events import read_events
from aimd.iq.install import Layout


def record_hash(data: bytes) -> str:
    """The hash notation of a wheel RECORD line."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _manifest(ctx: IQContext) -> dict[str, Any] | None:
    if ctx.prefix is None or ctx.prefix.current_version() is None:
        return None
    return json.loads((ctx.prefix.current / "bundle" / "manifest.json").read_text(encoding="utf-8"))


def installed_file_problems(site_packages: Path, dist: str) -> list[str]:
    """Files of an installed distribution that differ from its RECORD, and extra files in its packages."""
    infos = [
        p for p in site_packages.glob("*.dist-info") if p.name.lower().startswith(dist.replace("-", "_").lower() + "-")
    ]
    if not infos:
        return [f"{dist}: not installed in {site_packages}"]
    info = infos[0]
    problems, listed = [], set()
    for line in (info / "RECORD").read_text(encoding="utf-8").splitlines():
        path, digest, _ = line.rsplit(",", 2)
        listed.add(path)
        file = site_packages / path
        if not digest:
            continue
        if not file.is_file():
            problems.append(f"missing {path}")
        elif record_hash(file.read_bytes()) != digest:
            problems.append(f"changed {path}")
    tops = (info / "top_level.txt").read_text().split() if (info / "top_level.txt").exists() else []
    for top in tops:
        folder = site_packages / top
        if folder.is_dir():
            for file in folder.rglob("*"):
                rel = file.relative_to(site_packages).as_posix()
                if file.is_file() and "__pycache__" not in rel and rel not in listed:
                    problems.append(f"extra {rel}")
    return problems


class _ReleaseCheck(IQCheck):
    """A check of the installed release: not evaluated without one."""

    def run(self, ctx: IQContext) -> CheckResult:
        manifest = _manifest(ctx)
        if manifest is None or ctx.prefix is None:
            return self.not_evaluated("no installed release (give --prefix)")
        return self.check(ctx, ctx.prefix, manifest)

    @abstractmethod
    def check(self, ctx: IQContext, prefix: Layout, manifest: dict[str, Any]) -> CheckResult:
        """The check itself, run once its preconditions hold."""


class ConsistencyCheck(_ReleaseCheck):
    key = "versions.consistency"
    area = "versions"
    clause = "002 §5.5.1 a–c, §6.6"
    title = "installed package, model tags, documents, bundle and protocol carry one version"
    impact = "the site runs or documents a different release than the one qualified"
    fix = "install the bundle whose version the protocol names; re-tag models and documents"
    critical = True

    def check(self, ctx: IQContext, prefix: Layout, manifest: dict[str, Any]) -> CheckResult:
        version = manifest["version"]
        product = manifest["product"]["name"]
        installed = installed_versions(str(prefix.current / "bin" / "python"), [product]).get(product)
        seen = {
            "bundle": version,
            "current": prefix.current_version(),
            "installed package": installed,
            "protocol": ctx.protocol.version_manifest.version,
        }
        for c in manifest["components"]:
            seen[f"{c['kind']} {c['name']}"] = c["version"]
            if "tag" in c:
                seen[f"tag {c['tag']}"] = c["tag"].rsplit("@", 1)[-1]
        for doc in sorted((prefix.current / "bundle" / "docs").glob("*")):
            seen[f"text of {doc.name}"] = version if version.encode() in doc.read_bytes() else "absent"
        for c in ctx.protocol.version_manifest.components:
            seen[f"protocol {c.kind} {c.name}"] = c.version
        differ = {k: v for k, v in seen.items() if v != version}
        return self.judge(
            not differ,
            f"all {version}",
            f"{len(seen)} places, {len(differ)} differ",
            reason="; ".join(f"{k}: {v}" for k, v in differ.items()) or f"all {version}",
            evidence=[ctx.write_evidence("versions", seen)],
            data={"versions": seen},
        )


class FilesCheck(_ReleaseCheck):
    key = "versions.files"
    area = "versions"
    clause = "002 §5.5.1 a, §6.2.2 f"
    title = "no changed, missing or extra file in the installed release"
    impact = "code or documents were altered after release"
    fix = "re-install the release from the signed bundle and find who changed the files"
    critical = True

    def check(self, ctx: IQContext, prefix: Layout, manifest: dict[str, Any]) -> CheckResult:
        release = prefix.current.resolve()
        problems = [f"bundle: {p}" for p in bundle_problems(release / "bundle")]
        site = next((release / "lib").glob("python*/site-packages"))
        problems += [f"package: {p}" for p in installed_file_problems(site, manifest["product"]["name"])]
        return self.judge(
            not problems,
            "every file as released",
            f"{len(problems)} problems",
            reason="; ".join(problems[:20]) or "all files as released",
            evidence=[ctx.write_evidence("installed_files", {"problems": problems})],
        )


class NamingCheck(_ReleaseCheck):
    key = "versions.naming"
    area = "versions"
    clause = "002 §6.6.1 d–e"
    title = "version naming and release notes complete"
    impact = "changes cannot be traced to a release"
    fix = "name versions MAJOR.MINOR.PATCH; give notes with changes, fixes and dependencies"

    def check(self, ctx: IQContext, prefix: Layout, manifest: dict[str, Any]) -> CheckResult:
        version = manifest["version"]
        notes = prefix.current / "bundle" / "RELEASE-NOTES.md"
        problems = [] if check_version_name(version) else [f"version {version!r} is not MAJOR.MINOR.PATCH"]
        problems += notes_problems(notes.read_text(encoding="utf-8"), version) if notes.exists() else ["no notes"]
        return self.judge(
            not problems,
            "MAJOR.MINOR.PATCH; notes with changes, fixes, dependencies",
            "; ".join(problems) or "complete",
        )


class ReleaseProcessCheck(_ReleaseCheck):
    key = "versions.release_process"
    area = "versions"
    clause = "002 §6.6.1 f, §5.5.1"
    title = "release signed, install approved and recorded"
    impact = "an unreviewed release could reach patients"
    fix = "sign bundles with the release key and record who approved each install"

    def check(self, ctx: IQContext, prefix: Layout, manifest: dict[str, Any]) -> CheckResult:
        events = read_events(prefix.events)
        version = manifest["version"]
        tasks = {
            e["task_id"]
            for e in events
            if e["kind"] == "install"
            and e["event"] == "completed"
            and (e.get("result") or {}).get("version") == version
        }
        approvals = [e for e in events if e["task_id"] in tasks and e["event"] == "approved"]
        signed = not any("signature" in p for p in bundle_problems(prefix.current / "bundle"))
        observed = {
            "signer": manifest.get("signer"),
            "signature_valid": signed,
            "install_tasks": sorted(tasks),
            "approved_by": [e["operator"] for e in approvals],
        }
        ok = signed and bool(tasks) and len(approvals) >= len(tasks)
        return self.judge(
            ok, "valid signature; each install of this version approved", json.dumps(observed), data=observed
        )


VERSION_CHECKS: list[type[IQCheck]] = [ConsistencyCheck, FilesCheck, NamingCheck, ReleaseProcessCheck]

__all__ = [
    "VERSION_CHECKS",
    "ConsistencyCheck",
    "FilesCheck",
    "NamingCheck",
    "ReleaseProcessCheck",
    "installed_file_problems",
    "record_hash",
]
