"""Install and rollback drills in a scratch prefix (002 §5.2.2, §6.3.2 a–c: rehearsed regularly, timed per scale).

A drill builds two signed probe releases (a small pure-Python product with SQL migrations), installs
the first, writes ``data_bytes`` of data (database rows and blob files), installs the second, rolls
back and checks that data and configuration are hash-identical to before the second install.

Example
-------
>>> import tempfile, pathlib
>>> d = rollback_drill(pathlib.Path(tempfile.mkdtemp()), data_bytes=10_000)
>>> d["identical"], d["version_after"]
(True, '1.0.0')
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from aimd.iq.bundle import build_bundle
from aimd.iq.install import Layout, install, rollback
from aimd.iq.signing import generate_key
from aimd.iq.wheels import write_wheel

PROBE = "iq-probe"
MIGRATIONS = {
    "0001_jobs.sql": "CREATE TABLE jobs(id INTEGER PRIMARY KEY, name TEXT, payload BLOB);",
    "0002_state.sql": "ALTER TABLE jobs ADD COLUMN state TEXT DEFAULT 'queued';",
}


def release_notes(version: str) -> str:
    """Release notes with the sections 002 §6.6.1 e asks for."""
    return (
        f"# {PROBE} {version}\n\n## Changes\n- release {version}\n\n## Fixes\n- none\n\n"
        f"## Dependencies\n- Python >= 3.11\n"
    )


def make_probe_bundle(
    root: Path,
    version: str,
    *,
    key: Path | None = None,
    module_text: str | None = None,
    migrations: dict[str, str] | None = None,
    config_text: str | None = None,
) -> Path:
    """A signed bundle of the probe product at ``root/bundle-<version>`` (key made when absent)."""
    root.mkdir(parents=True, exist_ok=True)
    key = key or root / "release.key"
    if not key.exists():
        generate_key(key)
    work = root / f"src-{version}"
    wheel = write_wheel(
        work / "wheel", PROBE, version, {"iq_probe/__init__.py": module_text or f"__version__ = {version!r}\n"}
    )
    notes = work / "NOTES.md"
    notes.write_text(release_notes(version), encoding="utf-8")
    manual = work / "manual.md"
    manual.write_text(f"# {PROBE} user manual, version {version}\n", encoding="utf-8")
    config = work / "aimd.toml"
    config.write_text(config_text or 'env = "production"\n', encoding="utf-8")
    mig_dir = work / "migrations"
    mig_dir.mkdir(exist_ok=True)
    for name, sql in (MIGRATIONS if migrations is None else migrations).items():
        (mig_dir / name).write_text(sql, encoding="utf-8")
    out = root / f"bundle-{version}"
    build_bundle(
        out,
        version=version,
        key=key,
        release_notes=notes,
        product_wheel=wheel,
        docs=[manual],
        config=config,
        migrations=sorted(mig_dir.glob("*.sql")),
    )
    return out


def fill_data(layout: Layout, data_bytes: int, *, chunk: int = 1 << 20) -> None:
    """Write ``data_bytes`` split between database rows and blob files under ``data/``."""
    blobs = layout.data / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    half = data_bytes // 2
    con = sqlite3.connect(layout.data / "aimd.db")
    with con:
        written = 0
        while written < half:
            size = min(chunk, half - written)
            con.execute("INSERT INTO jobs(name, payload) VALUES (?, ?)", (f"job{written}", os.urandom(size)))
            written += size
    con.close()
    written, n = 0, 0
    while written < data_bytes - half:
        size = min(chunk, data_bytes - half - written)
        (blobs / f"{n:06d}.bin").write_bytes(os.urandom(size))
        written, n = written + size, n + 1


def rollback_drill(root: Path, *, data_bytes: int) -> dict[str, Any]:
    """Install 1.0.0, add data, install 1.1.0, roll back; durations and whether the state is hash-identical."""
    layout = Layout(root / "prefix")
    key = root / "release.key"
    first = make_probe_bundle(root, "1.0.0", key=key, migrations={"0001_jobs.sql": MIGRATIONS["0001_jobs.sql"]})
    second = make_probe_bundle(root, "1.1.0", key=key)
    install(first, layout.prefix, operator="drill")
    fill_data(layout, data_bytes)
    before = layout.state_hashes()
    start = time.perf_counter()
    upgrade = install(second, layout.prefix, operator="drill")
    install_s = time.perf_counter() - start
    back = rollback(layout.prefix, operator="drill")
    after = layout.state_hashes()
    return {
        "data_bytes": data_bytes,
        "install_s": round(install_s, 3),
        "backup_s": upgrade.steps.get("backup"),
        "rollback_s": round(back.seconds, 3),
        "identical": after == before,
        "version_after": layout.current_version(),
        "hashes_before": before,
        "hashes_after": after,
    }


__all__ = ["MIGRATIONS", "PROBE", "fill_data", "make_probe_bundle", "release_notes", "rollback_drill"]
