"""The running platform's handles: settings, database, sessions, blob store and audit log.

Example
-------
>>> import tempfile
>>> p = Platform.open(tempfile.mkdtemp())
>>> p.database_url.startswith("sqlite:///"), p.audit.verify()
(True, None)
>>> p.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from aimd.core.config import PlatformSettings, get_settings
from aimd.platform.mask_store import MaskStore
from aimd.store import AuditLog, make_engine, session_factory, upgrade

__all__ = ["DB_FILE", "Platform"]

DB_FILE = "platform.db"


@dataclass
class Platform:
    """Everything a request needs."""

    data_dir: Path
    settings: PlatformSettings
    database_url: str
    engine: Engine
    sessions: sessionmaker[Session]
    blobs: MaskStore
    audit: AuditLog

    @classmethod
    def open(
        cls,
        data_dir: str | Path,
        *,
        database_url: str | None = None,
        settings: PlatformSettings | None = None,
        migrate: bool = True,
    ) -> Platform:
        """Open (and migrate) the platform whose files live in ``data_dir``."""
        data = Path(data_dir).resolve()
        data.mkdir(parents=True, exist_ok=True)
        settings = settings or get_settings().platform
        url = database_url or settings.database_url or f"sqlite:///{data / DB_FILE}"
        engine = make_engine(url)
        if migrate:
            upgrade(engine, "platform")
        return cls(
            data,
            settings,
            url,
            engine,
            session_factory(engine),
            MaskStore(data / "blobs"),
            AuditLog(engine, migrate=False),
        )

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()
