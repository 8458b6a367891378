"""Audit retention (001 §10.1.7, §11.3.1 "日志防篡改并按规定留存"): entries older than the configured
``platform.audit_retention_days`` are archived into hash-verified segment files in the data folder's
``audit-archive`` and only then deleted from the database (:meth:`aimd.store.AuditLog.archive`).
``aimd audit verify DATA`` still holds afterwards and checks every segment against its record.

Example
-------
>>> import tempfile
>>> from aimd.core.config import PlatformSettings
>>> p = Platform.open(tempfile.mkdtemp(), settings=PlatformSettings(audit_retention_days=30))
>>> _ = p.audit.append("admin", "login", "user:admin")
>>> _ = p.audit.append("admin", "logout", "user:admin")
>>> later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
>>> out = archive_audit(p, actor="admin", now=later)
>>> out["entries"], len(p.audit), p.audit.verify(), p.audit.verify_archive(out["folder"])
(1, 2, None, [])
>>> p.close()
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from aimd.core.errors import ConfigError
from aimd.platform.app_state import Platform
from aimd.store.audit import ARCHIVE_FOLDER

__all__ = ["archive_audit"]


def archive_audit(
    platform: Platform, *, actor: str, days: int | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Archive, then delete, the audit entries older than the retention (``days`` or the setting)."""
    keep = days if days is not None else platform.settings.audit_retention_days
    if keep is None:
        raise ConfigError(
            "no audit retention is configured",
            where="platform.audit_retention_days",
            hint="set platform.audit_retention_days (aimd.toml or AIMD_PLATFORM__AUDIT_RETENTION_DAYS) or pass --days",
        )
    if keep < 1:
        raise ConfigError(f"retention must be at least 1 day, got {keep}", where="days", hint="pass --days 1 or more")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=keep)
    out = platform.audit.archive(cutoff, platform.data_dir / ARCHIVE_FOLDER, actor=actor)
    return {**out, "retention_days": keep}
