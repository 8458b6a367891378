"""aimd.store — database engines and sessions, per-app Alembic migrations, blobs and the audit log.

Shared by the inference service and the annotation platform; knows nothing above ``aimd.core``.
"""

from aimd.store.audit import AuditLog
from aimd.store.blobs import BlobStore
from aimd.store.engine import database_url, is_postgres, is_sqlite, make_engine, session_factory
from aimd.store.migrate import current, head, upgrade

__all__ = [
    "AuditLog",
    "BlobStore",
    "current",
    "database_url",
    "head",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "session_factory",
    "upgrade",
]
