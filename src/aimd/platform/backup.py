"""Backup and restore with a hash manifest (001 §10.2.3, §11.4.2).

A backup folder holds the database (SQLite online-backup copy, or ``pg_dump`` custom format), every
blob, and ``manifest.json`` with the SHA-256 and size of each file plus the audit log's length and head
hash. :func:`restore` checks every hash before touching anything, refuses a mismatched or incomplete
backup, restores database and blobs, then re-verifies the blob store and the audit chain.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import ConfigError, IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.platform.app_state import DB_FILE, Platform
from aimd.platform.mask_store import MaskStore
from aimd.store import make_engine
from aimd.store.audit import ARCHIVE_FOLDER, AuditLog

__all__ = ["backup", "restore", "verify_backup"]

MANIFEST = "manifest.json"
PG_DUMP = "platform.pgdump"


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    raise ConfigError(
        f"{name} not found", where="PATH", hint="install the postgresql client (apt-get install postgresql)"
    )


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup(platform: Platform, dest: str | Path) -> dict[str, Any]:
    """Write a backup of the platform to the new folder ``dest``; returns the manifest."""
    dest = Path(dest)
    with atomic_dir(dest) as tmp:
        if platform.engine.dialect.name == "sqlite":
            db_path = make_url(platform.database_url).database
            src = sqlite3.connect(db_path)
            dst = sqlite3.connect(tmp / DB_FILE)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            kind = "sqlite"
        else:
            subprocess.run(
                [
                    _pg_tool("pg_dump"),
                    "--format=custom",
                    "--no-owner",
                    f"--file={tmp / PG_DUMP}",
                    f"--dbname={_libpq(platform.database_url)}",
                ],
                check=True,
                capture_output=True,
            )
            kind = "postgresql"
        for path in platform.blobs.files():  # whole blobs and mask slabs
            target = tmp / "blobs" / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        archived = platform.data_dir / ARCHIVE_FOLDER
        if archived.is_dir():
            shutil.copytree(archived, tmp / ARCHIVE_FOLDER)
        files = {
            p.relative_to(tmp).as_posix(): {"sha256": sha256_file(p), "size": p.stat().st_size}
            for p in sorted(tmp.rglob("*"))
            if p.is_file()
        }
        manifest = {
            "aimd": __version__,
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "database": kind,
            "files": files,
            "audit": {"entries": len(platform.audit), "head_sha256": platform.audit.head()},
        }
        atomic_write_json(tmp / MANIFEST, manifest)
    return manifest


def verify_backup(src: str | Path) -> dict[str, Any]:
    """The manifest of backup ``src`` after checking every file's hash and size; a mismatch is an error."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except FileNotFoundError:
        raise InvalidInputError(
            "no manifest.json: not an aimd platform backup",
            where=str(src),
            hint="pass a folder written by aimd platform backup",
        ) from None
    bad = []
    for rel, meta in manifest["files"].items():
        path = src / rel
        if not path.is_file():
            bad.append(f"{rel} missing")
        elif path.stat().st_size != meta["size"] or sha256_file(path) != meta["sha256"]:
            bad.append(f"{rel} changed")
    listed = set(manifest["files"]) | {MANIFEST}
    bad += [
        f"{p.relative_to(src).as_posix()} not in the manifest"
        for p in src.rglob("*")
        if p.is_file() and p.relative_to(src).as_posix() not in listed
    ]
    if bad:
        raise IntegrityError(
            f"backup does not match its manifest: {', '.join(sorted(bad)[:5])}"
            + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
            where=str(src),
            hint="use an intact backup; nothing was restored",
        )
    return manifest


def restore(src: str | Path, data_dir: str | Path, *, database_url: str | None = None) -> dict[str, Any]:
    """Restore backup ``src`` into the empty platform folder ``data_dir`` (and database); verified first."""
    src, data_dir = Path(src), Path(data_dir)
    manifest = verify_backup(src)
    if (data_dir / DB_FILE).exists() or (data_dir / "blobs").exists():
        raise InvalidInputError(
            "the target platform folder is not empty",
            where=str(data_dir),
            hint="restore into a new folder (the running platform is never overwritten)",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    if manifest["database"] == "sqlite":
        if database_url and not database_url.startswith("sqlite"):
            raise InvalidInputError("a SQLite backup restores to SQLite", where="--db", hint="leave --db out")
        tmp = data_dir / f".{DB_FILE}.restoring"
        shutil.copy2(src / DB_FILE, tmp)
        os.replace(tmp, data_dir / DB_FILE)
        url = f"sqlite:///{(data_dir / DB_FILE).resolve()}"
    else:
        if not database_url:
            raise InvalidInputError(
                "a PostgreSQL backup needs the target database",
                where="--db",
                hint="pass --db postgresql+psycopg://user@host/empty_db",
            )
        subprocess.run(
            [
                _pg_tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                f"--dbname={_libpq(database_url)}",
                str(src / PG_DUMP),
            ],
            check=True,
            capture_output=True,
        )
        url = database_url
    with atomic_dir(data_dir / "blobs") as tmp_blobs:
        if (src / "blobs").exists():
            shutil.copytree(src / "blobs", tmp_blobs, dirs_exist_ok=True)
    if (src / ARCHIVE_FOLDER).is_dir():
        with atomic_dir(data_dir / ARCHIVE_FOLDER) as tmp_archive:
            shutil.copytree(src / ARCHIVE_FOLDER, tmp_archive, dirs_exist_ok=True)
    engine = make_engine(url)
    try:
        log = AuditLog(engine, migrate=False)
        checks = {
            "blobs_damaged": MaskStore(data_dir / "blobs").verify(),
            "audit_first_bad": log.verify(),
            "audit_archive_problems": log.verify_archive(data_dir / ARCHIVE_FOLDER),
            "audit_entries": len(log),
            "audit_head_sha256": log.head(),
        }
    finally:
        engine.dispose()
    if (
        checks["blobs_damaged"]
        or checks["audit_first_bad"] is not None
        or checks["audit_archive_problems"]
        or checks["audit_head_sha256"] != manifest["audit"]["head_sha256"]
    ):
        raise IntegrityError(
            f"restored data fails its checks: {checks}",
            where=str(data_dir),
            hint="the backup is inconsistent; use another one",
        )
    return {"restored_from": str(src), "data_dir": str(data_dir), "database": manifest["database"], **checks}
