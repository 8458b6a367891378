"""aimd.store: engines, per-app migrations, the blob store and the append-only audit log — on SQLite
and on a real PostgreSQL started by the tests."""

from __future__ import annotations

import json
import threading
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.audit import chain_break, entry_hash, link
from aimd.core.errors import ConfigError, IntegrityError, InvalidInputError
from aimd.store import AuditLog, BlobStore, current, head, make_engine, upgrade
from aimd.store.audit import AUDIT_TABLE

runner = CliRunner()


def _drop_guards(engine: sa.Engine) -> None:
    """What someone with direct database access could do: remove the append-only triggers."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP TRIGGER aimd_audit_log_no_change ON aimd_audit_log"))
        else:
            conn.execute(sa.text("DROP TRIGGER aimd_audit_log_no_update"))
            conn.execute(sa.text("DROP TRIGGER aimd_audit_log_no_delete"))


def _log(url: str, n: int = 5) -> AuditLog:
    log = AuditLog(make_engine(url))
    for i in range(n):
        log.append(f"user{i % 2}", "save", f"annotation:{i}", {"version": i, "note": "边界"})
    return log


def test_core_chain_detects_each_kind_of_tampering() -> None:
    trail: list[dict] = []
    for i in range(4):
        trail.append(link({"n": i}, trail[-1]["sha256"] if trail else None))
    assert chain_break(trail) is None
    assert chain_break([{**trail[0], "n": 9}, *trail[1:]]) == 0
    assert chain_break([trail[0], trail[2], trail[3]]) == 1
    assert chain_break([trail[0], trail[2], trail[1], trail[3]]) == 1
    forged = link({"n": 99}, trail[1]["sha256"])
    assert chain_break([*trail[:2], forged, *trail[2:]]) == 3
    assert chain_break([{"n": 0}, {"n": 1}]) == 0
    assert chain_break([]) is None
    assert entry_hash({"a": 1}, None) != entry_hash({"a": 1}, trail[0]["sha256"])


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "sub" / "x.db")
    with engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(sa.text("PRAGMA busy_timeout")).scalar() > 0


def test_sqlite_files_are_private_to_their_owner(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "db" / "app.db")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "db").iterdir()}
    engine.dispose()
    assert "app.db-wal" in modes, modes
    assert set(modes.values()) == {0o600}, modes


def test_an_existing_sqlite_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    engine = make_engine(path)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    engine.dispose()
    assert path.stat().st_mode & 0o777 == 0o640


def test_bad_urls_and_apps_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported database"):
        make_engine("mysql://u@h/db")
    with pytest.raises(ConfigError, match="no migrations package"):
        upgrade(make_engine("sqlite://"), "nosuchapp")
    with pytest.raises(ConfigError, match="not an application name"):
        upgrade(make_engine("sqlite://"), "../x")


def test_migration_version_is_recorded_per_app(database_url: str) -> None:
    engine = make_engine(database_url)
    assert current(engine, "store") is None
    assert upgrade(engine, "store") == head("store")
    assert upgrade(engine, "store") == head("store")  # idempotent
    with engine.connect() as conn:
        assert sa.inspect(conn).has_table("alembic_version_store")
        assert not sa.inspect(conn).has_table("alembic_version")


def test_audit_log_holds_and_is_append_only(database_url: str) -> None:
    log = _log(database_url)
    entries = log.entries()
    assert [e["seq"] for e in entries] == [0, 1, 2, 3, 4]
    assert entries[2]["detail"] == {"version": 2, "note": "边界"}
    assert log.verify() is None and log.head() == entries[-1]["sha256"] and len(log) == 5
    for statement in ("UPDATE aimd_audit_log SET actor = 'x' WHERE seq = 1", "DELETE FROM aimd_audit_log"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), log.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert len(log) == 5


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        ("UPDATE aimd_audit_log SET detail = '{\"version\": 7}' WHERE seq = 2", 2),
        ("DELETE FROM aimd_audit_log WHERE seq = 1", 1),
        ("UPDATE aimd_audit_log SET seq = seq + 100 WHERE seq IN (1, 3)", 1),
        ("UPDATE aimd_audit_log SET sha256 = NULL, prev_sha256 = NULL", 0),
    ],
    ids=["changed", "deleted", "reordered", "unhashed"],
)
def test_audit_verify_names_the_first_bad_entry(database_url: str, tamper: str, first_bad: int) -> None:
    log = _log(database_url)
    _drop_guards(log.engine)
    with log.engine.begin() as conn:
        conn.execute(sa.text(tamper))
    assert log.verify() == first_bad
    result = runner.invoke(app, ["audit", "verify", database_url, "--json"])
    assert result.exit_code == 1, result.output
    out = json.loads(result.stdout)
    assert out["first_bad_index"] == first_bad and not out["ok"]
    assert f"entry {first_bad}" in out["message"]


def test_audit_verify_catches_an_inserted_entry(database_url: str) -> None:
    log = _log(database_url, 3)
    forged = link(
        {
            "seq": 3,
            "timestamp": "2026-01-01T00:00:00+00:00",
            "actor": "mallory",
            "action": "save",
            "subject": "annotation:9",
            "detail": {},
        },
        "0" * 64,
    )
    with log.engine.begin() as conn:
        conn.execute(AUDIT_TABLE.insert().values(**{**forged, "detail": "{}"}))
    assert log.verify() == 3
    log.append("alice", "save", "annotation:1", {})
    assert log.verify() == 3


def test_concurrent_appends_keep_one_chain(database_url: str) -> None:
    log = AuditLog(make_engine(database_url))

    def worker(k: int) -> None:
        for i in range(10):
            log.append(f"w{k}", "save", f"s{i}", {})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(log) == 40 and log.verify() is None


def test_cli_verify_on_a_clean_database_file_and_json_trails(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    _log(str(db), 3)
    for target in (str(db), str(tmp_path)):
        result = runner.invoke(app, ["audit", "verify", target])
        assert result.exit_code == 0, result.output
        assert "holds" in result.stdout
    trail = [link({"action": "create"}, None)]
    trail.append(link({"action": "submit"}, trail[0]["sha256"]))
    good, unhashed, package = tmp_path / "t.json", tmp_path / "u.jsonl", tmp_path / "p.json"
    good.write_text(json.dumps(trail))
    unhashed.write_text("\n".join(json.dumps({"action": a}) for a in ("create", "submit")))
    package.write_text(json.dumps({"metadata": {"audit": [trail[1], trail[0]]}}))
    assert runner.invoke(app, ["audit", "verify", str(good)]).exit_code == 0
    result = runner.invoke(app, ["audit", "verify", str(unhashed)])
    assert result.exit_code == 1 and "carries no hash" in result.stdout
    assert runner.invoke(app, ["audit", "verify", str(package)]).exit_code == 1


def test_cli_verify_bad_input_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("not json")
    for target in (str(tmp_path / "missing"), str(tmp_path / "x.txt")):
        result = runner.invoke(app, ["audit", "verify", target])
        assert isinstance(result.exception, InvalidInputError), result.output


def test_blob_store_roundtrip_dedup_and_damage(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = bytes(1_000_000)
    sha = store.put(data)
    assert store.put(data) == sha and len(store) == 1 and sha in store
    assert store.path(sha).stat().st_size < len(data) // 100  # compressed
    assert store.get(sha) == data and store.verify() == []
    other = store.put(b"other")
    store.path(other).write_bytes(zlib.compress(b"tampered"))
    assert store.verify() == [other]
    with pytest.raises(IntegrityError, match="does not match its name"):
        store.get(other)
    store.path(sha).write_bytes(b"\x00 not zlib")
    with pytest.raises(IntegrityError, match="cannot be decompressed"):
        store.get(sha)
    with pytest.raises(IntegrityError, match="missing"):
        store.get("0" * 64)
    with pytest.raises(InvalidInputError, match="SHA-256"):
        store.get("../etc/passwd")
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_streamed_blob_is_the_blob_put_whole_and_a_failed_stream_stores_nothing(tmp_path: Path) -> None:
    import os
    import time

    store = BlobStore(tmp_path / "blobs")
    data = bytes(range(256)) * 20_000  # 5 MB, more than one chunk of put_file
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    sha = store.put_file(source)
    assert sha == store.put(data) and len(store) == 1  # same name as put() of the bytes: stored once
    assert store.get(sha) == data and store.verify() == []
    old = time.time() - 3600
    os.utime(store.path(sha), (old, old))
    with store.writer() as out:
        for k in range(0, len(data), 300_000):
            out.write(memoryview(data)[k : k + 300_000])
    assert out.sha256 == sha and out.size == len(data) and len(store) == 1
    assert store.path(sha).stat().st_mtime > old + 1800  # re-use counts as a write (spared by collect)
    with pytest.raises(ValueError, match="already stored"):
        out.write(b"more")
    with pytest.raises(RuntimeError), store.writer() as broken:
        broken.write(b"half a blob")
        raise RuntimeError("the source failed")
    assert len(store) == 1 and not list(tmp_path.rglob("*.tmp"))  # nothing half-written, no leftover
    # a stream a killed process left behind is removed by collect() once it is older than the grace period
    part = store.root / ".part-killed.tmp"
    part.write_bytes(b"partial")
    assert store.collect({sha}, grace_seconds=600) == [] and part.exists()
    os.utime(part, (old, old))
    assert store.collect({sha}, grace_seconds=600) == [] and not part.exists() and sha in store
