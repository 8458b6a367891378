"""Offline install into ``PREFIX/releases/X.Y.Z``, automatic rollback on failure, one-command rollback.

``install`` (002 §4.1.2 c–d, §5.2): lock → verify signature and hashes → free-space preflight → a venv
per release with the bundle's wheels (``pip --no-index --require-hashes``) → back up data and
configuration → configure → migrate → health check → switch ``PREFIX/current`` atomically. Any
failure restores data and configuration from the backup, removes the half-made release and leaves
``current`` as it was (002 §5.2.1, §5.2.2). ``rollback`` goes back to the release before the last
install with data and configuration hash-identical to the moment before it (002 §6.3.2 a–c). Every
step is an event of the hash-chained log ``PREFIX/logs/events.jsonl`` (002 §5.4.1).

Layout::

    PREFIX/current -> releases/X.Y.Z     PREFIX/data/ (aimd.db, blobs)   PREFIX/config/ (aimd.toml)
    PREFIX/backups/<task>/               PREFIX/logs/events.jsonl        PREFIX/state/history.json

Example
-------
>>> import tempfile, pathlib
>>> layout = Layout(pathlib.Path(tempfile.mkdtemp()))
>>> layout.current_version() is None
True
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aimd.core.atomic import atomic_write_json
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.hashing import sha256_tree
from aimd.iq.account import ServiceAccount, apply_service_layout, lookup_account
from aimd.iq.bundle import verify_bundle
from aimd.iq.events import EventLog, Task

DATABASE = "aimd.db"
SPACE_FACTOR = 2.0
SPACE_MARGIN = 32 * 2**20  # the release's virtualenv, bytecode and the log
MEMORY_NEEDED = 1 << 30  # address space the install and the health check of a release need (AIMD_IQ_MEMORY_NEEDED)
HEALTH_TIMEOUT_S = 120


class InstallLockedError(AimdError):
    """Another install or rollback holds the prefix's lock (002 §6.3.1 d)."""

    exit_code = 1


class InstallFailedError(AimdError):
    """An install step failed; the prefix was rolled back to its state before the install."""

    exit_code = 1


class RollbackError(AimdError):
    """Nothing to roll back, or the restored state does not match the backup."""

    exit_code = 1


@dataclass
class Layout:
    """The folders of an installation prefix."""

    prefix: Path

    def __post_init__(self) -> None:
        self.prefix = Path(self.prefix).absolute()

    @property
    def releases(self) -> Path:
        return self.prefix / "releases"

    @property
    def current(self) -> Path:
        return self.prefix / "current"

    @property
    def data(self) -> Path:
        return self.prefix / "data"

    @property
    def config(self) -> Path:
        return self.prefix / "config"

    @property
    def backups(self) -> Path:
        return self.prefix / "backups"

    @property
    def events(self) -> Path:
        return self.prefix / "logs" / "events.jsonl"

    @property
    def history(self) -> Path:
        return self.prefix / "state" / "history.json"

    @property
    def lock(self) -> Path:
        return self.prefix / ".install.lock"

    def current_version(self) -> str | None:
        """Version ``current`` points at, or ``None`` before the first install."""
        return os.readlink(self.current).rsplit("/", 1)[-1] if self.current.is_symlink() else None

    def python(self, version: str) -> Path:
        return self.releases / version / "bin" / "python"

    def read_history(self) -> list[dict[str, Any]]:
        return json.loads(self.history.read_text(encoding="utf-8")) if self.history.exists() else []

    def service_user(self) -> str | None:
        """The service account the last install recorded, or ``None``."""
        return next((h["service_user"] for h in reversed(self.read_history()) if h.get("service_user")), None)

    def service_account(self) -> ServiceAccount | None:
        """The recorded service account as it exists now (a clear error when it was removed)."""
        name = self.service_user()
        return lookup_account(name) if name else None

    def state_hashes(self) -> dict[str, str]:
        """SHA-256 over the data and configuration folders (paths and contents)."""
        return {
            name: sha256_tree(path) if path.exists() else "absent"
            for name, path in (("data", self.data), ("config", self.config))
        }


@contextlib.contextmanager
def prefix_lock(layout: Layout) -> Iterator[None]:
    """Exclusive non-blocking lock of the prefix; a second install or rollback is refused."""
    layout.prefix.mkdir(parents=True, exist_ok=True)
    handle = open(layout.lock, "a+")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise InstallLockedError(
                f"another install or rollback is running ({holder})",
                where=str(layout.prefix),
                hint="wait for it to finish; installs into one prefix run one at a time",
            ) from err
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(UTC).isoformat(timespec='seconds')}")
        handle.flush()
        yield
    finally:
        handle.close()


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def preflight_space(layout: Layout, bundle: Path) -> dict[str, Any]:
    """Refuse to start when the prefix's filesystem lacks room for the release and the backup (002 §6.3.1 a)."""
    need = int(SPACE_FACTOR * (_tree_size(bundle) + _tree_size(layout.data) + _tree_size(layout.config)))
    need += SPACE_MARGIN
    free = shutil.disk_usage(layout.prefix).free
    info = {"free_bytes": free, "needed_bytes": need}
    if free < need:
        raise InvalidInputError(
            f"not enough free disk space: {free} bytes free, {need} needed",
            where=str(layout.prefix),
            hint="free space or choose a larger filesystem before installing",
        )
    return info


def preflight_memory() -> dict[str, Any]:
    """Refuse to start when the process may not use enough memory (002 §6.3.1 a: warn before failing)."""
    import resource

    import psutil

    needed = int(os.environ.get("AIMD_IQ_MEMORY_NEEDED", MEMORY_NEEDED))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    limit = None if soft == resource.RLIM_INFINITY else soft
    available = psutil.virtual_memory().available
    usable = min(available, limit) if limit is not None else available
    info = {"available_bytes": available, "address_space_limit": limit, "needed_bytes": needed}
    if usable < needed:
        what = f"address-space limit {limit}" if limit is not None and limit < available else f"{available} free"
        raise InvalidInputError(
            f"not enough memory: {what} bytes, {needed} needed",
            where="memory",
            hint="raise the memory limit (ulimit -v, cgroup) or free memory before installing",
        )
    return info


def preflight_account(layout: Layout, account: ServiceAccount | None, python: str | None) -> dict[str, Any]:
    """Refuse to start when the service account cannot start the interpreter, enter the prefix or read the
    base packages (a parent folder private to root, say)."""
    if account is None:
        return {}
    interpreter = python or sys.executable
    why = account.cannot_run(interpreter, layout.prefix, *map(Path, base_site_packages()))
    if why is not None and os.geteuid() == 0:
        raise InvalidInputError(
            f"service account {account.name!r} cannot start {interpreter}: {why}",
            where="--python",
            hint="install into a prefix the account can enter, with --python an interpreter outside "
            "private folders (e.g. /usr/bin/python3.11)",
        )
    return {"service_user": account.name, "python": interpreter}


def base_site_packages() -> list[str]:
    """The installer's site-packages, which a release's venv sees after its own."""
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    return sorted(os.path.realpath(p) for p in paths)


def create_release_env(target: Path, bundle: Path, python: str | None = None) -> dict[str, Any]:
    """A venv at ``target`` with the bundle's wheels installed offline, hash-checked; sees the base packages.

    ``python`` is the interpreter the venv is made from (default: this one), e.g. the system's when this
    one lies in a folder the service account cannot enter."""
    if python is None:
        venv.EnvBuilder(with_pip=False, symlinks=True).create(target)
    else:
        subprocess.run([python, "-m", "venv", "--without-pip", "--symlinks", str(target)], check=True, timeout=300)
    purelib = Path(
        subprocess.run(
            [str(target / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    # base packages come after the release's own (a .pth appends to sys.path)
    (purelib / "aimd-base-packages.pth").write_text("\n".join(base_site_packages()) + "\n", encoding="utf-8")
    # --ignore-installed: a same-named package among the base packages must not stand in for the release's own
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(target / "bin" / "python"),
        "install",
        "-q",
        "--ignore-installed",
        "--no-index",
        "--no-deps",
        "--require-hashes",
        "--find-links",
        str(bundle / "wheels"),
        "-r",
        str(bundle / "requirements.lock"),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip install failed: {' '.join(proc.stderr.strip().splitlines()[-3:])}")
    shutil.copytree(bundle, target / "bundle", symlinks=False)
    return {"python": str(target / "bin" / "python"), "wheels": len(list((bundle / "wheels").glob("*.whl")))}


def _copy_state(layout: Layout, dest: Path) -> None:
    dest.mkdir(parents=True)
    for name, src in (("data", layout.data), ("config", layout.config)):
        if src.exists():
            shutil.copytree(src, dest / name, symlinks=True)


def backup(layout: Layout, task_id: str, meta: dict[str, Any]) -> Path:
    """Copy data and configuration to ``backups/<task>`` with their hashes."""
    dest = layout.backups / task_id
    _copy_state(layout, dest)
    atomic_write_json(dest / "backup.json", {**meta, "hashes": layout.state_hashes()})
    return dest


def restore(layout: Layout, source: Path) -> dict[str, str]:
    """Replace data and configuration by the backup's copy (renames, so a reader never sees a mix)."""
    for name, live in (("data", layout.data), ("config", layout.config)):
        saved = source / name
        old = live.with_name(f".{name}.old")
        if old.exists():
            shutil.rmtree(old)
        if live.exists():
            os.replace(live, old)
        if saved.exists():
            tmp = live.with_name(f".{name}.restore")
            if tmp.exists():
                shutil.rmtree(tmp)
            shutil.copytree(saved, tmp, symlinks=True)
            os.replace(tmp, live)
        if old.exists():
            shutil.rmtree(old)
    account = layout.service_account()
    if account is not None:  # copies are the restorer's: the service account gets its data back
        apply_service_layout(layout, account)
    return layout.state_hashes()


def configure(layout: Layout, bundle: Path) -> list[str]:
    """Copy the bundle's default configuration files that the site does not have yet (site files win)."""
    layout.config.mkdir(parents=True, exist_ok=True)
    added = []
    for cfg in sorted((bundle / "config").glob("*")):
        target = layout.config / cfg.name
        if not target.exists():
            shutil.copy2(cfg, target)
            os.chmod(target, 0o600)
            added.append(cfg.name)
    return added


def migrate(layout: Layout, bundle: Path) -> dict[str, Any]:
    """Apply the bundle's numbered SQL migrations above the database's ``user_version``."""
    layout.data.mkdir(parents=True, exist_ok=True)
    db = layout.data / DATABASE
    con = sqlite3.connect(db)
    try:
        before = con.execute("PRAGMA user_version").fetchone()[0]
        applied = []
        for path in sorted((bundle / "migrations").glob("*.sql")):
            number = int(path.name.split("_", 1)[0])
            if number <= con.execute("PRAGMA user_version").fetchone()[0]:
                continue
            try:
                con.executescript(
                    f"BEGIN;\n{path.read_text(encoding='utf-8')}\nPRAGMA user_version = {number};\nCOMMIT;"
                )
            except sqlite3.Error as err:
                raise RuntimeError(f"migration {path.name} failed: {err}") from err
            applied.append(path.name)
        after = con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()
    os.chmod(db, 0o600)
    return {"from": before, "to": after, "applied": applied}


_HEALTH = """
import importlib, importlib.metadata as md, json, sys
name, version = sys.argv[1], sys.argv[2]
dist = md.distribution(name)
tops = (dist.read_text("top_level.txt") or "").split()
for top in tops:
    importlib.import_module(top)
print(json.dumps({"name": name, "version": dist.version, "modules": tops, "location": str(dist.locate_file(""))}))
"""


def health_check(layout: Layout, version: str, product: str, account: ServiceAccount | None = None) -> dict[str, Any]:
    """Start the new release's interpreter (as the service account, if any), import the product and compare
    its version with the bundle's."""
    env = {**os.environ, "AIMD_CONFIG": str(layout.config / "aimd.toml")}
    env.pop("PYTHONPATH", None)
    drop: dict[str, Any] = {}
    if account is not None:
        env, drop = account.env(env), account.popen_kwargs()
    proc = subprocess.run(
        [str(layout.python(version)), "-c", _HEALTH, product, version],
        capture_output=True,
        text=True,
        timeout=HEALTH_TIMEOUT_S,
        env=env,
        check=False,
        cwd=layout.prefix,
        **drop,
    )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise RuntimeError(f"health check failed: {last}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if info["version"] != version:
        raise RuntimeError(f"health check: installed {product} is {info['version']}, bundle says {version}")
    if not info["location"].startswith(str(layout.releases / version)):
        raise RuntimeError(f"health check: {product} is imported from {info['location']}, not the release")
    return info


def switch_current(layout: Layout, version: str | None) -> None:
    """Point ``current`` at ``releases/<version>`` in one rename (or remove it for ``None``)."""
    if version is None:
        with contextlib.suppress(FileNotFoundError):
            layout.current.unlink()
        return
    tmp = layout.prefix / f".current.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(f"releases/{version}", tmp)
    os.replace(tmp, layout.current)


@dataclass
class InstallResult:
    """What an install or rollback did."""

    task_id: str
    version: str | None
    previous: str | None
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    service_user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "version": self.version,
            "previous": self.previous,
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "hashes": self.hashes,
            "service_user": self.service_user,
        }


class _Steps:
    """Runs named steps, logging each as an ``executed`` event with its duration."""

    def __init__(self, task: Task) -> None:
        self.task, self.current, self.times = task, "start", {}

    def run(self, name: str, fn: Any, *args: Any) -> Any:
        self.current = name
        start = time.perf_counter()
        result = fn(*args)
        self.times[name] = round(time.perf_counter() - start, 4)
        self.task.executed(name, result, parameters={"seconds": self.times[name]})
        return result


def install(
    bundle: str | Path,
    prefix: str | Path,
    *,
    operator: str | None = None,
    approved_by: str | None = None,
    public_key: bytes | None = None,
    service_user: str | None = None,
    python: str | None = None,
) -> InstallResult:
    """Install a verified bundle into ``prefix``; on any failure roll back automatically and raise.

    ``service_user``: the unprivileged account the services run as (kept from the last install when not
    given): it owns ``data/``, reads ``config/`` through its group and runs the health check.
    ``python``: the interpreter the release's venv is made from (default: this one)."""
    layout, bundle = Layout(Path(prefix)), Path(bundle).absolute()
    account = lookup_account(service_user) if service_user else layout.service_account()
    start = time.perf_counter()
    with prefix_lock(layout):
        log = EventLog(layout.events, operator=operator)
        task = log.task("install", {"bundle": str(bundle), "prefix": str(layout.prefix)})
        task.approved(approved_by or log.operator)
        steps = _Steps(task)
        previous = layout.current_version()
        made_release, saved, version = False, None, None
        try:
            manifest = steps.run("verify", lambda: _verified(bundle, public_key))
            version = manifest["version"]
            if previous == version:
                raise InvalidInputError(
                    f"version {version} is already the current release",
                    where=str(bundle),
                    hint="build a bundle with a new version",
                )
            steps.run(
                "preflight",
                lambda: {
                    **preflight_space(layout, bundle),
                    **preflight_memory(),
                    **preflight_account(layout, account, python),
                },
            )
            target = layout.releases / version
            if target.exists():
                shutil.rmtree(target)
            made_release = True
            steps.run("install", create_release_env, target, bundle, python)
            saved = steps.run("backup", lambda: str(backup(layout, task.id, {"from": previous, "to": version})))
            steps.run("configure", configure, layout, target / "bundle")
            steps.run("migrate", migrate, layout, target / "bundle")
            if account is not None:
                steps.run("permissions", apply_service_layout, layout, account)
            steps.run("health", health_check, layout, version, manifest["product"]["name"], account)
            steps.run("switch", switch_current, layout, version)
            history = layout.read_history()
            history.append(
                {
                    "task_id": task.id,
                    "from": previous,
                    "to": version,
                    "backup": saved,
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "rolled_back": False,
                    "service_user": account.name if account else None,
                }
            )
            atomic_write_json(layout.history, history)
        except BaseException as err:
            failed_step = steps.current
            task.failed(failed_step, str(err))
            restored = _auto_rollback(layout, task, previous, version if made_release else None, saved)
            if isinstance(err, AimdError) and failed_step in ("verify", "preflight"):
                raise
            raise InstallFailedError(
                f"install failed at step '{failed_step}': {err}; rolled back "
                f"(data {restored['data'][:12]}, config {restored['config'][:12]})",
                where=str(bundle),
                hint="see PREFIX/logs/events.jsonl; fix the cause and install again",
            ) from err
        result = InstallResult(
            task.id,
            version,
            previous,
            time.perf_counter() - start,
            steps.times,
            layout.state_hashes(),
            account.name if account else None,
        )
        task.completed(result.to_dict())
        return result


def _verified(bundle: Path, public_key: bytes | None) -> dict[str, Any]:
    manifest = verify_bundle(bundle, public_key=public_key)
    return {
        "version": manifest["version"],
        "product": manifest["product"],
        "files": len(manifest["files"]),
        "signer": manifest["signer"],
    }


def _auto_rollback(
    layout: Layout, task: Task, previous: str | None, new_release: str | None, saved: str | None
) -> dict[str, str]:
    before = json.loads((Path(saved) / "backup.json").read_text())["hashes"] if saved else layout.state_hashes()
    hashes = restore(layout, Path(saved)) if saved else layout.state_hashes()
    if layout.current_version() != previous:
        switch_current(layout, previous)
    if new_release and new_release != previous:
        shutil.rmtree(layout.releases / new_release, ignore_errors=True)
    task.executed("auto-rollback", {"restored_to": previous, "hashes": hashes, "identical": hashes == before})
    return hashes


def rollback(prefix: str | Path, *, operator: str | None = None, approved_by: str | None = None) -> InstallResult:
    """Go back to the release before the last install, restoring data and configuration from its backup."""
    layout = Layout(Path(prefix))
    if not layout.releases.exists():
        raise InvalidInputError(
            "no installation in this prefix",
            where=str(layout.prefix),
            hint="pass the prefix given to `aimd iq install`",
        )
    start = time.perf_counter()
    with prefix_lock(layout):
        log = EventLog(layout.events, operator=operator)
        history = layout.read_history()
        pending = [h for h in history if not h["rolled_back"]]
        task = log.task("rollback", {"prefix": str(layout.prefix), "current": layout.current_version()})
        if not pending:
            task.failed("select", "no install to roll back")
            raise RollbackError(
                "no install to roll back", where=str(layout.prefix), hint="the prefix is at its first state already"
            )
        entry = pending[-1]
        task.approved(approved_by or log.operator)
        steps = _Steps(task)
        expected = json.loads((Path(entry["backup"]) / "backup.json").read_text())["hashes"]
        hashes = steps.run("restore", restore, layout, Path(entry["backup"]))
        steps.run("switch", switch_current, layout, entry["from"])
        if hashes != expected:
            task.failed("compare", "restored state differs from the backup", {"expected": expected, "got": hashes})
            raise RollbackError(
                "restored data or configuration differs from the backup",
                where=entry["backup"],
                hint="restore the backup folder by hand and report the defect",
            )
        entry["rolled_back"] = True
        entry["rolled_back_time"] = datetime.now(UTC).isoformat(timespec="seconds")
        atomic_write_json(layout.history, history)
        result = InstallResult(task.id, entry["from"], entry["to"], time.perf_counter() - start, steps.times, hashes)
        task.completed({**result.to_dict(), "identical": True})
        return result


__all__ = [
    "DATABASE",
    "InstallFailedError",
    "InstallLockedError",
    "InstallResult",
    "Layout",
    "RollbackError",
    "backup",
    "base_site_packages",
    "configure",
    "create_release_env",
    "health_check",
    "install",
    "migrate",
    "preflight_account",
    "preflight_space",
    "prefix_lock",
    "restore",
    "rollback",
    "switch_current",
]
