"""The append-only, hash-chained audit log in the database (001 §10.1.7, §11.3.1, §11.5).

Every state change of the platform and the inference service is one row: sequence number, UTC
time, actor, action, subject and a JSON detail, chained by :mod:`aimd.core.audit` hashes, so
``verify`` finds a changed, deleted, inserted or reordered row. The table refuses UPDATE and
DELETE by trigger on SQLite and PostgreSQL (and on PostgreSQL TRUNCATE too, with the privileges
revoked from PUBLIC): the application cannot rewrite history; someone with file or superuser
access who drops the triggers is still caught by the chain.

An entry can be written in the caller's own transaction (``connection=``), so a state change and
its audit entry commit together or not at all.

Example
-------
>>> from aimd.store.engine import make_engine
>>> log = AuditLog(make_engine("sqlite://"))
>>> _ = log.append("alice", "login", "user:alice", {"ip": "127.0.0.1"})
>>> _ = log.append("alice", "save", "annotation:7", {"version": 2})
>>> [e["action"] for e in log.entries()], log.verify()
(['login', 'save'], None)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from aimd.core.audit import chain_break, link, unhashed
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_bytes
from aimd.store.migrate import upgrade

__all__ = ["AUDIT_TABLE", "AuditLog", "describe_break", "load_trail"]

_meta = sa.MetaData()
AUDIT_TABLE = sa.Table(
    "aimd_audit_log",
    _meta,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("timestamp", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(400), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("prev_sha256", sa.String(64), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
)
_LOCK_KEY = int(sha256_bytes(b"aimd-audit-append")[:15], 16)
_BODY = ("seq", "timestamp", "actor", "action", "subject", "detail")


def _row_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(row)
    # a damaged detail stays text: its hash no longer matches and verify() names it
    with contextlib.suppress(TypeError, ValueError):
        entry["detail"] = json.loads(entry["detail"])
    return entry


class AuditLog:
    """The audit table of one database (migrated on first use).

    Parameters
    ----------
    engine:
        The database; its store tables are brought to the newest revision.
    """

    def __init__(self, engine: Engine, *, migrate: bool = True) -> None:
        self.engine = engine
        if migrate:
            upgrade(engine, "store")

    def append(
        self,
        actor: str,
        action: str,
        subject: str,
        detail: Mapping[str, Any] | None = None,
        *,
        connection: Connection | Session | None = None,
    ) -> dict[str, Any]:
        """Add one chained entry and return it; inside ``connection``'s transaction when given."""
        if connection is None:
            with self.engine.begin() as conn:
                return self._append(conn, actor, action, subject, detail or {})
        conn = connection.connection() if isinstance(connection, Session) else connection
        return self._append(conn, actor, action, subject, detail or {})

    def _append(
        self, conn: Connection, actor: str, action: str, subject: str, detail: Mapping[str, Any]
    ) -> dict[str, Any]:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        last = conn.execute(
            sa.select(AUDIT_TABLE.c.seq, AUDIT_TABLE.c.sha256).order_by(AUDIT_TABLE.c.seq.desc()).limit(1)
        ).first()
        body = {
            "seq": 0 if last is None else last.seq + 1,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "detail": json.loads(json.dumps(dict(detail), sort_keys=True, ensure_ascii=False, default=str)),
        }
        entry = link(body, None if last is None else last.sha256)
        row = {**entry, "detail": json.dumps(entry["detail"], sort_keys=True, ensure_ascii=False)}
        conn.execute(AUDIT_TABLE.insert().values(**row))
        return entry

    def entries(
        self,
        *,
        subject: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries in order, optionally filtered (a filtered list is for reading, not for verify)."""
        query = sa.select(AUDIT_TABLE).order_by(AUDIT_TABLE.c.seq)
        for column, value in (("subject", subject), ("actor", actor), ("action", action)):
            if value is not None:
                query = query.where(AUDIT_TABLE.c[column] == value)
        if after_seq is not None:
            query = query.where(AUDIT_TABLE.c.seq > after_seq)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_row_entry(r._mapping) for r in conn.execute(query)]

    def verify(self) -> int | None:
        """Position of the first entry that breaks the chain, or ``None`` when the whole log holds.

        A changed, deleted, inserted or reordered row breaks the chain at that row. Rows cut from
        the end leave a shorter chain that still holds: compare :meth:`head` with a copy kept
        elsewhere (backup manifests record it) to catch that. An empty log holds.
        """
        return chain_break(self.entries())

    def head(self, *, connection: Connection | Session | None = None) -> str | None:
        """Hash of the newest entry (``None`` for an empty log); inside ``connection`` when given."""
        query = sa.select(AUDIT_TABLE.c.sha256).order_by(AUDIT_TABLE.c.seq.desc()).limit(1)
        if connection is not None:
            return connection.execute(query).scalar()
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(AUDIT_TABLE)).scalar_one())


def _file_entries(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        doc: Any = json.loads(text)
    except ValueError:
        try:
            doc = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as err:
            raise InvalidInputError(
                f"neither JSON nor JSON lines ({err})",
                where=str(path),
                hint="pass an audit trail (JSON list or JSON lines), an annotation "
                "package, a SQLite database or a database URL",
            ) from None
    if isinstance(doc, dict):
        if isinstance(doc.get("metadata"), dict) and "audit" in doc["metadata"]:
            doc = doc["metadata"]["audit"]
        elif "entries" in doc:
            doc = doc["entries"]
        elif "audit" in doc:
            doc = doc["audit"]
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise InvalidInputError(
            "no audit trail found",
            where=str(path),
            hint="expected a list of entries, {'entries': [...]} or an annotation package",
        )
    return doc


def _database_of(path: Path) -> str:
    if path.is_dir():
        found = sorted(path.glob("*.db"))
        if len(found) != 1:
            raise InvalidInputError(
                f"{len(found)} database files (*.db) in the folder",
                where=str(path),
                hint="name the database file or its URL",
            )
        return str(found[0])
    return str(path)


def load_trail(target: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """The audit entries at ``target`` and what it was: a database URL, a SQLite file or a folder
    holding one ``*.db``, a JSON / JSON-lines trail, or an annotation package."""
    from aimd.store.engine import make_engine

    text = str(target)
    if "://" not in text:
        path = Path(text)
        if not path.exists():
            raise InvalidInputError(
                "no such file or folder",
                where=text,
                hint="pass a platform data folder, a database file or URL, or a JSON trail",
            )
        db = _database_of(path)
        with open(db, "rb") as handle:
            is_db = handle.read(16) == b"SQLite format 3\x00"
        if not is_db:
            return "file", _file_entries(path)
        text = db
    engine = make_engine(text)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(AUDIT_TABLE.name):
                raise InvalidInputError(
                    "the database has no audit log table",
                    where=text,
                    hint="point at the database of an aimd platform or service",
                )
        return "database", AuditLog(engine, migrate=False).entries()
    finally:
        engine.dispose()


def describe_break(entries: list[dict[str, Any]], index: int) -> str:
    """One sentence naming the entry where a chain breaks and the likely cause."""
    entry = entries[index]
    who = ", ".join(f"{k}={entry[k]!r}" for k in ("seq", "actor", "action", "subject") if k in entry)
    if unhashed(entry):
        return f"entry {index} ({who}) carries no hash: a trail without its hash chain proves nothing"
    return (
        f"entry {index} ({who}) does not match the hash chain: it or the entry before it was changed, "
        "deleted, inserted or reordered"
    )
