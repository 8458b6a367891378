"""Alembic migrations per application, each with its own version table, in one shared database.

The migrations of an application live in the package ``aimd.<app>.migrations`` (one revision
file per schema change). :func:`upgrade` brings the database to the newest revision and records
it in ``alembic_version_<app>``, so ``serving`` and ``platform`` can share a database and still
migrate independently. The store's own tables (the audit log) are migrated first, as app ``store``.

Example
-------
>>> from aimd.store.engine import make_engine
>>> engine = make_engine("sqlite://")
>>> upgrade(engine, "store") == current(engine, "store") != None
True
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from aimd.core.errors import ConfigError
from aimd.core.hashing import sha256_bytes

__all__ = ["current", "head", "migrations_dir", "upgrade", "version_table"]

_APP = re.compile(r"^[a-z][a-z0-9_]*$")


def version_table(app: str) -> str:
    """Name of the table holding ``app``'s schema revision.

    Example
    -------
    >>> version_table("platform")
    'alembic_version_platform'
    """
    if not _APP.match(app):
        raise ConfigError(f"not an application name: {app!r}", where="migrations", hint="use e.g. 'platform'")
    return f"alembic_version_{app}"


def migrations_dir(app: str) -> Path:
    """Folder of the package ``aimd.<app>.migrations``."""
    version_table(app)
    try:
        spec = importlib.util.find_spec(f"aimd.{app}.migrations")
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"aimd.{app} has no migrations package",
            where=f"aimd.{app}.migrations",
            hint="add the package with its revision files",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _script(app: str) -> tuple[Config, ScriptDirectory]:
    folder = migrations_dir(app)
    cfg = Config()
    cfg.set_main_option("script_location", str(folder))
    cfg.set_main_option("version_locations", str(folder))
    cfg.set_main_option("path_separator", "os")
    return cfg, ScriptDirectory.from_config(cfg)


def head(app: str) -> str | None:
    """The newest revision of ``app``'s migrations."""
    return _script(app)[1].get_current_head()


def current(engine: Engine, app: str) -> str | None:
    """The revision the database is at for ``app`` (``None`` before its first migration)."""
    table = version_table(app)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(table):
            return None
        return conn.execute(sa.text(f"SELECT version_num FROM {table}")).scalar()


def _run(engine: Engine, app: str) -> None:
    cfg, script = _script(app)

    def steps(rev: str | tuple[str, ...], _context: object) -> list:
        return script._upgrade_revs("head", rev)

    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # one migrator at a time per application, across processes
            key = int(sha256_bytes(f"aimd-migrate-{app}".encode())[:15], 16)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        with EnvironmentContext(cfg, script, fn=steps, destination_rev="head") as env:
            env.configure(connection=conn, version_table=version_table(app), transactional_ddl=True)
            with env.begin_transaction():
                env.run_migrations()


def upgrade(engine: Engine, app: str) -> str | None:
    """Migrate ``app``'s tables (and the store's own, first) to the newest revision; return it."""
    migrations_dir(app)
    if app != "store":
        _run(engine, "store")
    _run(engine, app)
    return current(engine, app)
