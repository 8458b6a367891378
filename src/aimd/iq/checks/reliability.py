"""Reliability drills in scratch prefixes (002 §5.2, §6.3.1 a, d, §6.3.2 a–c): rollback timed for small and large
data, a full disk refused before anything changes, concurrent installs serialised.

Example
-------
>>> DRILL_SIZES["quick"]
(1000000, 50000000)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.logs import lifecycle_problems
from aimd.iq.drill import make_probe_bundle, rollback_drill
from aimd.iq.events import read_events
from aimd.iq.install import Layout

DRILL_SIZES = {"quick": (1_000_000, 50_000_000), "full": (1_000_000, 1_000_000_000)}


class RollbackDrillCheck(IQCheck):
    key = "reliability.rollback"
    area = "reliability"
    clause = "002 §5.2.2, §6.3.2 a–c"
    title = "rollback restores data and configuration hash-identical; duration for small and large data"
    impact = "a failed upgrade cannot be undone, or takes too long"
    fix = "repair the rollback path before any upgrade at this site"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        rows = []
        for size in DRILL_SIZES.get(ctx.profile, DRILL_SIZES["quick"]):
            root = ctx.scratch(f"rollback-{size}")
            drill = rollback_drill(root, data_bytes=size)
            ctx.shared.setdefault("drill_layouts", {})[f"rollback drill {size} B"] = Layout(root / "prefix")
            rows.append(
                {
                    k: drill[k]
                    for k in ("data_bytes", "install_s", "backup_s", "rollback_s", "identical", "version_after")
                }
            )
        bad = [r for r in rows if not r["identical"] or r["version_after"] != "1.0.0"]
        ctx.shared["rollback_times"] = rows
        observed = "; ".join(
            f"{r['data_bytes'] / 1e6:g} MB: rollback {r['rollback_s']:.2f} s, "
            f"{'identical' if r['identical'] else 'DIFFERENT'}"
            for r in rows
        )
        return self.judge(
            not bad,
            "state hash-identical after rollback at every size",
            observed,
            evidence=[ctx.write_evidence("rollback_drill", rows)],
            data={"drills": rows},
        )


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, check=False
    )
    return proc.returncode == 0


class DiskFullCheck(IQCheck):
    key = "reliability.disk_full"
    area = "reliability"
    clause = "002 §6.3.1 a, §5.3.1"
    title = "a full data filesystem is refused with a clear warning before anything changes"
    impact = "an install on a full disk leaves a broken half-installed system"
    fix = "keep the free-space preflight; free disk space before installing"

    def run(self, ctx: IQContext) -> CheckResult:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return self.not_evaluated("mounting a small tmpfs needs root")
        bundle = make_probe_bundle(ctx.scratch("disk-full-bundle"), "1.0.0")
        mount = ctx.scratch("disk-full") / "fs"
        if not _mount_tmpfs(mount, "4m"):
            return self.not_evaluated("tmpfs mount refused in this environment")
        try:
            filler = mount / "filler.bin"
            free = shutil.disk_usage(mount).free
            filler.write_bytes(b"\0" * max(0, free - 64 * 1024))
            prefix = mount / "prefix"
            from aimd.core.errors import InvalidInputError
            from aimd.iq.install import install

            try:
                install(bundle, prefix, operator="drill")
                outcome, message = "installed", ""
            except InvalidInputError as err:
                outcome, message = "refused", str(err)
            except Exception as err:
                outcome, message = "failed", f"{type(err).__name__}: {err}"
            releases = prefix / "releases"
            untouched = not (releases.exists() and any(releases.iterdir())) and not (prefix / "current").exists()
            events = read_events(Layout(prefix).events)
            warned = any(e["event"] == "failed" and e["step"] == "preflight" for e in events)
        finally:
            subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        data = {"outcome": outcome, "message": message, "untouched": untouched, "warning_logged": warned}
        return self.judge(
            outcome == "refused" and untouched and warned,
            "refused at preflight with a free-space message; nothing installed; warning logged",
            f"{outcome}: {message[:160]}",
            evidence=[ctx.write_evidence("disk_full", data)],
            data=data,
        )


class MemoryLimitCheck(IQCheck):
    key = "reliability.memory_limit"
    area = "reliability"
    clause = "002 §6.3.1 a, §5.3.1"
    title = "an install under a too-small memory limit (prlimit) is refused with a warning before anything changes"
    impact = "an install killed for lack of memory leaves a half-installed system"
    fix = "keep the memory preflight; give the installer at least the memory the release needs"

    def run(self, ctx: IQContext) -> CheckResult:
        if shutil.which("prlimit") is None:
            return self.not_evaluated("prlimit (util-linux) is not installed")
        root = ctx.scratch("memory-limit")
        bundle = make_probe_bundle(root, "1.0.0")
        prefix = root / "prefix"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        limit = 640 * 2**20
        proc = subprocess.run(
            ["prlimit", f"--as={limit}", "--", sys.executable, "-c", _INSTALL, str(bundle), str(prefix), "drill"],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        releases = prefix / "releases"
        untouched = not (releases.exists() and any(releases.iterdir())) and not (prefix / "current").exists()
        events = read_events(Layout(prefix).events)
        warned = any(
            e["event"] == "failed" and e["step"] == "preflight" and "memory" in str(e["result"]) for e in events
        )
        data = {
            "limit_bytes": limit,
            "exit": proc.returncode,
            "message": last,
            "untouched": untouched,
            "warning_logged": warned,
        }
        return self.judge(
            proc.returncode != 0 and untouched and warned,
            "refused at preflight naming memory; nothing installed; warning logged",
            f"exit {proc.returncode}: {last[:160]}",
            evidence=[ctx.write_evidence("memory_limit", data)],
            data=data,
        )


_INSTALL = "import sys; from aimd.iq.install import install; install(sys.argv[1], sys.argv[2], operator=sys.argv[3])"


class ConcurrentInstallCheck(IQCheck):
    key = "reliability.concurrent_install"
    area = "reliability"
    clause = "002 §6.3.1 d, §5.3.2"
    title = "concurrent installs into one prefix are serialised: one runs, the other is refused or waits its turn"
    impact = "two installs at once corrupt the installation"
    fix = "keep the prefix lock; schedule batch installs one per prefix"

    def run(self, ctx: IQContext) -> CheckResult:
        root = ctx.scratch("concurrent")
        key = root / "release.key"
        bundles = [make_probe_bundle(root, v, key=key) for v in ("1.0.0", "1.1.0")]
        prefix = root / "prefix"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        start = time.perf_counter()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _INSTALL, str(b), str(prefix), f"installer-{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for i, b in enumerate(bundles)
        ]
        results = []
        for p in procs:
            _, err = p.communicate(timeout=600)
            last = err.strip().splitlines()[-1] if err.strip() else ""
            results.append({"exit": p.returncode, "error": last})
        layout = Layout(prefix)
        ctx.shared.setdefault("drill_layouts", {})["concurrent installs"] = layout
        refused = sum("InstallLockedError" in r["error"] for r in results)
        other_failures = [r for r in results if r["exit"] != 0 and "InstallLockedError" not in r["error"]]
        problems = lifecycle_problems(read_events(layout.events), layout.read_history(), layout.current_version())
        data = {
            "processes": results,
            "refused_by_lock": refused,
            "current": layout.current_version(),
            "log_problems": problems,
            "seconds": round(time.perf_counter() - start, 3),
        }
        ok = not other_failures and not problems and layout.current_version() in {"1.0.0", "1.1.0"}
        return self.judge(
            ok,
            "each install completes or is refused by the lock; state and log consistent",
            f"{refused} refused by the lock, {len(other_failures)} other failures, current {layout.current_version()}",
            evidence=[ctx.write_evidence("concurrent", data)],
            data=data,
        )


RELIABILITY_CHECKS: list[type[IQCheck]] = [RollbackDrillCheck, DiskFullCheck, MemoryLimitCheck, ConcurrentInstallCheck]

__all__ = [
    "DRILL_SIZES",
    "RELIABILITY_CHECKS",
    "ConcurrentInstallCheck",
    "DiskFullCheck",
    "MemoryLimitCheck",
    "RollbackDrillCheck",
]
