"""Data lifecycle of the platform: project destruction commits before blobs go (001 §11.4.2); audit
retention archives verified segments before purging (001 §10.1.7, §11.3.1)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from platform_support import cube_mask, make_site
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import IntegrityError
from aimd.platform.mask_store import manifest_of, mask_npy
from aimd.platform.models import DestructionRecord, Project, User
from aimd.platform.projects import destroy_project, referenced_blobs


@pytest.fixture
def site(tmp_path: Path, database_url: str):
    s = make_site(tmp_path / "data", database_url)
    yield s
    s.platform.close()


def _two_projects(site) -> tuple[int, int]:
    """Project A (a case shared with B by image content, one of its own, a saved draft) and project B."""
    a, b = site.project(readers=1, name="a"), site.project(readers=1, name="b")
    site.case(a, "shared", seed=0)
    site.case(a, "own", seed=1)
    site.case(b, "shared", seed=0)
    site.client.post(f"/api/v1/projects/{a}/distribute", json={}, headers=site.as_("admin"))
    user = "ann1" if site.tasks("ann1", project=a) else "ann2"
    task = site.tasks(user, project=a)[0]
    assert site.save(user, task["id"], cube_mask(grow=2)).status_code == 200
    return a, b


def test_a_failed_commit_on_project_delete_unlinks_no_blob(site) -> None:
    a, b = _two_projects(site)
    before = set(site.platform.blobs)

    def fail_at_commit(session) -> None:
        if any(isinstance(obj, DestructionRecord) for obj in session.identity_map.values()):
            raise RuntimeError("injected failure at commit")

    sa.event.listen(site.platform.sessions, "before_commit", fail_at_commit)
    try:
        client = TestClient(site.client.app, raise_server_exceptions=False)
        r = client.delete(f"/api/v1/projects/{a}", params={"reason": "study closed"}, headers=site.as_("admin"))
        assert r.status_code == 500
    finally:
        sa.event.remove(site.platform.sessions, "before_commit", fail_at_commit)
    assert set(site.platform.blobs) == before and site.platform.blobs.verify() == []
    assert site.client.get(f"/api/v1/projects/{a}", headers=site.as_("admin")).status_code == 200
    with site.platform.sessions() as db:
        assert referenced_blobs(db) <= before

    r = site.client.delete(f"/api/v1/projects/{a}", params={"reason": "study closed"}, headers=site.as_("admin"))
    assert r.status_code == 200, r.text
    removed = set(r.json()["blobs_removed"])
    with site.platform.sessions() as db:
        still = referenced_blobs(db)
    assert removed and not removed & still and still <= set(site.platform.blobs)
    assert set(site.platform.blobs) == before - removed
    cases = site.client.get(f"/api/v1/projects/{b}/cases", headers=site.as_("admin")).json()
    assert [c["case_key"] for c in cases] == ["shared"]  # the shared image blob survived with project b
    assert site.platform.audit.verify() is None
    assert [e["action"] for e in site.platform.audit.entries()][-2:] == ["destroy", "blobs.collect"]


def test_blobs_left_by_a_crash_after_commit_are_collected_later(site) -> None:
    a, b = _two_projects(site)
    site.client.post(f"/api/v1/projects/{b}/distribute", json={}, headers=site.as_("admin"))
    user = "ann1" if site.tasks("ann1", project=b) else "ann2"
    # project B's draft shares its last slab (slices 4-5) with project A's draft
    assert site.save(user, site.tasks(user, project=b)[0]["id"], cube_mask()).status_code == 200
    with site.platform.sessions() as db:
        project = db.get(Project, a)
        actor = db.scalar(sa.select(User).where(User.username == "admin"))
        record = destroy_project(db, site.platform.audit, actor, project, "retention over")
        db.commit()  # the process dies here: rows gone, no blob unlinked yet
        orphans = set(record.what["blobs"]) - referenced_blobs(db)
    assert orphans and orphans <= set(site.platform.blobs)
    data = str(site.platform.data_dir)
    url = site.platform.database_url
    runner = CliRunner()
    # within the grace period nothing goes: a blob just written may belong to a transaction in flight
    r = runner.invoke(app, ["platform", "gc", "--data", data, "--db", url, "--grace-seconds", "3600", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["removed"] == []
    r = runner.invoke(app, ["platform", "gc", "--data", data, "--db", url, "--grace-seconds", "0", "--json"])
    assert r.exit_code == 0, r.output
    removed = set(json.loads(r.stdout)["removed"])
    assert {sha for sha in removed if not sha.endswith(".d")} == orphans  # the versions, then their own slabs
    assert not orphans & set(site.platform.blobs) and site.platform.blobs.verify() == []
    with site.platform.sessions() as db:
        kept = [sha for sha in referenced_blobs(db) if manifest_of(site.platform.blobs, sha)]
    assert kept and all(mask_npy(site.platform.blobs, sha) for sha in kept)  # shared slabs stayed


def _verify(target: str, archive: Path) -> tuple[int, dict]:
    r = CliRunner().invoke(app, ["audit", "verify", target, "--archive", str(archive), "--json"])
    return r.exit_code, json.loads(r.stdout)


def _tamper(platform, sql: str) -> None:
    """Change a row behind the application's back (as someone with file or superuser access could)."""
    with platform.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER aimd_audit_log_no_update"))
        else:
            conn.execute(sa.text("ALTER TABLE aimd_audit_log DISABLE TRIGGER aimd_audit_log_no_change"))
        conn.execute(sa.text(sql))


def test_audit_retention_archives_before_purging_and_verify_still_holds(site) -> None:
    from aimd.platform.retention import archive_audit

    platform, url = site.platform, site.platform.database_url
    folder = platform.data_dir / "audit-archive"
    r = site.client.post("/api/v1/audit/archive", headers=site.as_("admin"))
    assert r.status_code == 422 and "retention" in r.json()["message"]  # none configured: nothing happens
    assert site.client.post("/api/v1/audit/archive", headers=site.as_("qc")).status_code == 403
    platform.settings.audit_retention_days = 30
    r = site.client.post("/api/v1/audit/archive", headers=site.as_("admin"))
    assert r.status_code == 200 and r.json()["entries"] == 0  # everything is younger than 30 days
    before = platform.audit.entries()

    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    first = archive_audit(platform, actor="admin", now=later)
    assert first["entries"] == len(before) - 1 and first["through_seq"] == before[-2]["seq"]
    segment = json.loads((folder / first["segment"]).read_text())
    assert segment["entries"] == before[:-1] and segment["verification"]["chain"] == "holds"
    kept = platform.audit.entries()
    assert kept[0] == before[-1] and kept[-1]["action"] == "audit.archive"
    assert platform.audit.verify() is None and platform.audit.verify_archive(folder) == []
    code, out = _verify(url, folder)
    assert code == 0 and out["ok"] and out["archived_entries"] == len(before) - 1

    with pytest.raises(sa.exc.DBAPIError, match="append-only"), platform.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM aimd_audit_log WHERE seq = :s"), {"s": kept[-1]["seq"]})
    site.login("rev")  # new entries keep chaining from the kept ones
    second = archive_audit(platform, actor="admin", now=later + dt.timedelta(days=1))
    assert second["start_sha256"] == first["head_sha256"] and second["first_seq"] == first["through_seq"] + 1
    code, out = _verify(url, folder)
    assert code == 0 and out["archived_segments"] == 2

    path = folder / first["segment"]
    good = path.read_bytes()
    path.write_bytes(good.replace(b'"actor": "admin"', b'"actor": "someone"', 1))
    code, out = _verify(url, folder)
    assert code == 1 and "SHA-256 differs" in out["message"]
    path.unlink()
    code, out = _verify(url, folder)
    assert code == 1 and "missing" in out["message"]
    path.write_bytes(good)
    assert _verify(url, folder)[0] == 0

    _tamper(platform, "UPDATE aimd_audit_log SET actor = 'someone' WHERE seq = (SELECT MAX(seq) FROM aimd_audit_log)")
    with pytest.raises(IntegrityError, match="nothing was archived"):
        archive_audit(platform, actor="admin", now=later + dt.timedelta(days=2))
    assert sorted(p.name for p in folder.iterdir()) == sorted([first["segment"], second["segment"]])
    assert _verify(url, folder)[0] == 1


def test_platform_verify_names_a_missing_or_damaged_slab(site) -> None:
    a, _ = _two_projects(site)
    data, url = str(site.platform.data_dir), site.platform.database_url
    args = ["platform", "verify", "--data", data, "--db", url, "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.output
    with site.platform.sessions() as db:
        draft = next(sha for sha in referenced_blobs(db) if manifest_of(site.platform.blobs, sha))
    slab = manifest_of(site.platform.blobs, draft).slabs[0]
    path = site.platform.blobs.segment_path(slab)
    kept = path.read_bytes()
    path.write_bytes(kept[:-3] + b"\0\0\0")
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and json.loads(r.stdout)["damaged"] == [slab + ".d"], r.output
    path.unlink()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and json.loads(r.stdout)["missing"] == {draft: [slab + ".d"]}, r.output
