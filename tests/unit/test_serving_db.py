"""The service's tables on SQLite and PostgreSQL: tokens, jobs run at most once, restart recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimd.serving.db import ServingDB
from aimd.serving.errors import AuthenticationError


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ServingDB:
    url = str(tmp_path / "serving.db") if request.param == "sqlite" else request.getfixturevalue("postgresql_url")
    return ServingDB(url)


def test_tokens_store_only_a_hash_and_revocation_is_immediate(db: ServingDB):
    token, tid = db.create_token(["infer", "review"], name="reader")
    assert db.check_token(token).scopes == ("infer", "review")
    rows = db.tokens()
    assert [r["id"] for r in rows] == [tid] and token not in str(rows)
    with pytest.raises(AuthenticationError):
        db.check_token(token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert db.revoke_token(tid) and not db.revoke_token(tid)
    with pytest.raises(AuthenticationError):
        db.check_token(token)
    with pytest.raises(Exception, match="unknown scope"):
        db.create_token(["root"])


def test_a_job_is_claimed_once_and_a_restart_fails_the_interrupted_one(db: ServingDB):
    db.add_job("a" * 32, "m", "1", {"files": []}, "t1")
    db.add_job("b" * 32, "m", "1", {"files": []}, "t1")
    assert db.claim_job("a" * 32) is True
    assert db.claim_job("a" * 32) is False  # a second worker cannot run it again
    interrupted, queued = db.recover_jobs()  # the service died while job a ran
    assert interrupted == ["a" * 32] and queued == ["b" * 32]
    job = db.job("a" * 32)
    assert job is not None and job["status"] == "failed" and "not re-run" in job["error"] and job["attempts"] == 1
    assert db.claim_job("b" * 32)
    db.finish_job("b" * 32, result_id="c" * 32)
    assert db.job("b" * 32)["status"] == "done"  # type: ignore[index]
    assert db.recover_jobs() == ([], [])
