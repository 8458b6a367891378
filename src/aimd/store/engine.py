"""Database engines and sessions: SQLite (WAL) by default, PostgreSQL (psycopg 3) by URL — same code.

``make_engine`` accepts a SQLAlchemy URL or a plain file path (a SQLite database). SQLite gets
write-ahead logging, foreign keys, a busy timeout, full fsync at commit and ``BEGIN IMMEDIATE``
transactions, so concurrent writers queue instead of failing with "database is locked" when a
read turns into a write. PostgreSQL URLs are driven by psycopg 3 (``postgresql+psycopg://``).

Example
-------
>>> import tempfile, pathlib
>>> from sqlalchemy import text
>>> engine = make_engine(str(pathlib.Path(tempfile.mkdtemp()) / "x.db"))
>>> with engine.connect() as conn:
...     conn.execute(text("PRAGMA journal_mode")).scalar(), conn.execute(text("PRAGMA foreign_keys")).scalar()
('wal', 1)
>>> engine.dispose()
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from aimd.core.errors import ConfigError

__all__ = ["BUSY_TIMEOUT_MS", "database_url", "is_postgres", "is_sqlite", "make_engine", "session_factory"]

BUSY_TIMEOUT_MS = 30_000


def database_url(url_or_path: str | Path) -> sa.URL:
    """The SQLAlchemy URL for a URL or a file path; ``postgresql://`` is driven by psycopg 3.

    Example
    -------
    >>> database_url("postgresql://u@127.0.0.1:5432/db").drivername
    'postgresql+psycopg'
    >>> database_url("/tmp/platform.db").drivername
    'sqlite'
    """
    text = str(url_or_path)
    if "://" not in text:
        return sa.URL.create("sqlite", database=str(Path(text).expanduser().resolve()))
    try:
        url = make_url(text)
    except ArgumentError as err:
        raise ConfigError(
            f"not a database URL: {text!r} ({err})",
            where="database URL",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db",
        ) from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"unsupported database {url.get_backend_name()!r}",
            where="database URL",
            hint="use SQLite (sqlite:///file.db) or PostgreSQL (postgresql+psycopg://...)",
        )
    return url


def is_sqlite(engine: Engine) -> bool:
    """True for a SQLite engine."""
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    """True for a PostgreSQL engine."""
    return engine.dialect.name == "postgresql"


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # the driver must not open transactions by itself: ``begin`` below opens them
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str | Path, **kwargs: Any) -> Engine:
    """An engine for ``url`` (SQLAlchemy URL or a SQLite file path), set up for safe concurrent use.

    A SQLite file's folder is created. Extra keyword arguments go to :func:`sqlalchemy.create_engine`.
    """
    db_url = database_url(url)
    if db_url.get_backend_name() == "sqlite":
        if db_url.database and db_url.database != ":memory:":
            _create_private(Path(db_url.database))
        kwargs.setdefault("connect_args", {}).setdefault("check_same_thread", False)
        engine = sa.create_engine(db_url, **kwargs)
        _sqlite_setup(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(db_url, **kwargs)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session maker bound to ``engine``; objects stay readable after commit.

    Example
    -------
    >>> from sqlalchemy import text
    >>> Session = session_factory(make_engine("sqlite://"))
    >>> with Session() as s:
    ...     s.execute(text("select 1")).scalar()
    1
    """
    return sessionmaker(engine, expire_on_commit=False)
