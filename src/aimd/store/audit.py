"""The append-only, hash-chained audit log in the database (001 §10.1.7, §11.3.1, §11.5).

Every state change of the platform and the inference service is one row: sequence number, UTC
time, actor, action, subject and a JSON detail, chained by :mod:`aimd.core.audit` hashes, so
``verify`` finds a changed, deleted, inserted or reordered row. The table refuses UPDATE and
DELETE by trigger on SQLite and PostgreSQL (and on PostgreSQL TRUNCATE too, with the privileges
revoked from PUBLIC): the application cannot rewrite history; someone with file or superuser
access who drops the triggers is still caught by the chain.

An entry can be written in the caller's own transaction (``connection=``), so a state change and
its audit entry commit together or not at all.

Retention: :meth:`AuditLog.archive` moves the entries older than a cut-off into a segment file (the
entries, the hash they start from, their head hash and the chain check), records the segment's SHA-256
in the append-only ``aimd_audit_archive`` table, and only then deletes them — the database lets a DELETE
through for archived entries only. The kept entries link to the archived head, so :meth:`verify` still
holds, and :meth:`verify_archive` checks every segment file against its record and the links between
segments.

Example
-------
>>> from aimd.store.engine import make_engine
>>> log = AuditLog(make_engine("sqlite://"))
>>> _ = log.append("alice", "login", "user:alice", {"ip": "127.0.0.1"})
>>> _ = log.append("alice", "save", "annotation:7", {"version": 2})
>>> [e["action"] for e in log.entries()], log.verify()
(['login', 'save'], None)
>>> import datetime as dt, tempfile
>>> out = log.archive(dt.datetime.now(dt.UTC), tempfile.mkdtemp(), actor="retention")
>>> out["entries"], [e["action"] for e in log.entries()], log.verify(), log.verify_archive(out["folder"])
(1, ['save', 'audit.archive'], None, [])
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from aimd.core.atomic import atomic_write_bytes
from aimd.core.audit import chain_break, link, unhashed
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_bytes, sha256_file
from aimd.store.migrate import upgrade

__all__ = [
    "ARCHIVE_FOLDER",
    "ARCHIVE_TABLE",
    "AUDIT_TABLE",
    "SEGMENT_FORMAT",
    "AuditLog",
    "Trail",
    "check_archive",
    "describe_break",
    "load_trail",
    "read_trail",
]

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
ARCHIVE_TABLE = sa.Table(
    "aimd_audit_archive",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("first_seq", sa.Integer, nullable=False),
    sa.Column("through_seq", sa.Integer, nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("start_sha256", sa.String(64), nullable=True),
    sa.Column("head_sha256", sa.String(64), nullable=False),
    sa.Column("segment", sa.String(400), nullable=False),
    sa.Column("segment_sha256", sa.String(64), nullable=False),
    sa.Column("archived_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
)
SEGMENT_FORMAT = "aimd-audit-segment/1"
ARCHIVE_FOLDER = "audit-archive"
"""Where a platform or service keeps its archived segments, beside its SQLite database / in its data folder."""
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
        if last is None:  # everything archived: continue from the archived head
            last = conn.execute(
                sa.select(ARCHIVE_TABLE.c.through_seq.label("seq"), ARCHIVE_TABLE.c.head_sha256.label("sha256"))
                .order_by(ARCHIVE_TABLE.c.through_seq.desc())
                .limit(1)
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
        elsewhere (backup manifests record it) to catch that. An empty log holds. After archiving,
        the first kept entry must link to the newest archived head.
        """
        return chain_break(self.entries(), self.start())

    def start(self, *, connection: Connection | None = None) -> str | None:
        """The hash the oldest kept entry links to: the newest archived head (``None``: nothing archived)."""
        query = sa.select(ARCHIVE_TABLE.c.head_sha256).order_by(ARCHIVE_TABLE.c.through_seq.desc()).limit(1)
        if connection is not None:
            return connection.execute(query).scalar()
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def archives(self) -> list[dict[str, Any]]:
        """The archive records, oldest first."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(ARCHIVE_TABLE.name):  # a database from before retention
                return []
            rows = conn.execute(sa.select(ARCHIVE_TABLE).order_by(ARCHIVE_TABLE.c.through_seq))
            return [dict(r._mapping) for r in rows]

    def archive(self, older_than: dt.datetime, folder: str | Path, *, actor: str) -> dict[str, Any]:
        """Archive, then delete, the entries written before ``older_than`` (the newest entry always stays).

        The chain is verified first (a broken log is not archived). The segment file is written and
        synced, its record committed with the deletion and an ``audit.archive`` entry in one
        transaction: a crash leaves either the old log or the archived one, never a gap.
        """
        folder = Path(folder)
        cutoff = older_than.astimezone(dt.UTC).isoformat(timespec="microseconds")
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            start = self.start(connection=conn)
            rows = conn.execute(sa.select(AUDIT_TABLE).order_by(AUDIT_TABLE.c.seq))
            entries = [_row_entry(r._mapping) for r in rows]
            broken = chain_break(entries, start)
            if broken is not None:
                raise IntegrityError(
                    describe_break(entries, broken) + "; nothing was archived",
                    where=AUDIT_TABLE.name,
                    hint="investigate the change (aimd audit verify) before archiving",
                )
            old: list[dict[str, Any]] = []
            for entry in entries[:-1]:
                if entry["timestamp"] >= cutoff:
                    break
                old.append(entry)
            if not old:
                return {"entries": 0, "cutoff": cutoff, "folder": str(folder)}
            first, last = old[0]["seq"], old[-1]["seq"]
            now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
            doc = {
                "format": SEGMENT_FORMAT,
                "first_seq": first,
                "through_seq": last,
                "entries_count": len(old),
                "start_sha256": start,
                "head_sha256": old[-1]["sha256"],
                "verification": {"chain": "holds", "checked_at": now, "cutoff": cutoff},
                "entries": old,
            }
            name = f"audit-{first:010d}-{last:010d}.json"
            data = json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=1).encode("utf-8")
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(folder / name, data)
            record = {
                "first_seq": first,
                "through_seq": last,
                "entries": len(old),
                "start_sha256": start,
                "head_sha256": old[-1]["sha256"],
                "segment": name,
                "segment_sha256": sha256_bytes(data),
                "archived_at": now,
                "actor": actor,
            }
            conn.execute(ARCHIVE_TABLE.insert().values(**record))
            conn.execute(AUDIT_TABLE.delete().where(AUDIT_TABLE.c.seq <= last))
            self._append(conn, actor, "audit.archive", "audit", {k: v for k, v in record.items() if k != "actor"})
        return {**record, "cutoff": cutoff, "folder": str(folder)}

    def verify_archive(self, folder: str | Path) -> list[str]:
        """Problems with the archived segments in ``folder`` (see :func:`check_archive`)."""
        return check_archive(self.archives(), folder)

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


def _file_entries(path: Path) -> tuple[list[dict[str, Any]], str | None]:
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
    start = None
    if isinstance(doc, dict):
        if doc.get("format") == SEGMENT_FORMAT:
            start = doc.get("start_sha256")
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
    return doc, start


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


@dataclass
class Trail:
    """An audit trail as read from somewhere, with the hash its first entry links to."""

    kind: str
    entries: list[dict[str, Any]]
    start: str | None = None
    archives: list[dict[str, Any]] = field(default_factory=list)
    archive_folder: Path | None = None


def read_trail(target: str | Path) -> Trail:
    """The audit trail at ``target``: a database URL, a SQLite file or a folder holding one ``*.db``
    (with its ``audit-archive`` segments), a JSON / JSON-lines trail, an archived segment or an
    annotation package."""
    from aimd.store.engine import make_engine

    text, folder = str(target), None
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
            entries, start = _file_entries(path)
            return Trail("segment" if start is not None else "file", entries, start)
        text = db
        folder = Path(db).parent / ARCHIVE_FOLDER
    engine = make_engine(text)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(AUDIT_TABLE.name):
                raise InvalidInputError(
                    "the database has no audit log table",
                    where=text,
                    hint="point at the database of an aimd platform or service",
                )
            archived = sa.inspect(conn).has_table(ARCHIVE_TABLE.name)
        log = AuditLog(engine, migrate=False)
        if not archived:
            return Trail("database", log.entries())
        return Trail("database", log.entries(), log.start(), log.archives(), folder)
    finally:
        engine.dispose()


def load_trail(target: str | Path) -> tuple[str, list[dict[str, Any]]]:
    """The audit entries at ``target`` and what it was (see :func:`read_trail`, which also gives the
    hash the first entry links to once older entries are archived)."""
    trail = read_trail(target)
    return trail.kind, trail.entries


def check_archive(archives: list[dict[str, Any]], folder: str | Path) -> list[str]:
    """Problems with archived segments in ``folder`` against their records (empty when every one holds).

    Each recorded segment must exist with its recorded SHA-256, its entries must chain from its start
    to its head, and each segment must start where the one before ended.
    """
    folder, problems, prev = Path(folder), [], None
    for rec in archives:
        path = folder / rec["segment"]
        if rec["start_sha256"] != prev:
            problems.append(f"{rec['segment']}: starts at {rec['start_sha256']}, the segment before ends at {prev}")
        prev = rec["head_sha256"]
        if not path.is_file():
            problems.append(f"{rec['segment']}: missing from {folder}")
            continue
        if sha256_file(path) != rec["segment_sha256"]:
            problems.append(f"{rec['segment']}: SHA-256 differs from its archive record")
            continue
        trail = read_trail(path)
        holds = trail.entries and chain_break(trail.entries, trail.start) is None
        if not holds or trail.entries[-1]["sha256"] != rec["head_sha256"]:
            problems.append(f"{rec['segment']}: its entries do not chain from start to head")
    return problems


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
