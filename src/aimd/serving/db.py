"""The service's database: API tokens, persisted jobs and clinician reviews (SQLAlchemy, aimd.store).

Same code on SQLite (default, ``<data>/serving.db``) and PostgreSQL; tables are created by the
Alembic revisions in :mod:`aimd.serving.migrations`.

* Tokens (003 §5.2 access control): ``aimd_<id>_<secret>``; only the argon2 hash of the whole token
  is stored, the token is shown once. Scopes: ``infer``, ``review``, ``admin``.
* Jobs: accepted asynchronous requests. A job moves ``queued → running → done | failed`` by
  compare-and-set updates, so two workers never run the same job; at start-up every job left
  ``running`` by a stopped service is marked failed (never silently re-run: its SEG/SR may already
  have reached the PACS), every ``queued`` one is run.
* Reviews (003 §5.2): accept / reject / modified mask by a named reviewer, with Dice and changed
  voxels against the AI mask.

Example
-------
>>> db = ServingDB("sqlite://")
>>> token, tid = db.create_token(["infer"], name="ct-console")
>>> db.check_token(token).scopes
('infer',)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aimd.core.errors import InvalidInputError
from aimd.serving.errors import AuthenticationError

SCOPES = ("infer", "review", "admin")
_meta = sa.MetaData()
TOKENS = sa.Table(
    "serving_tokens",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("scopes", sa.String(200)),
    sa.Column("argon2_hash", sa.String(200)),
    sa.Column("created", sa.String(40)),
    sa.Column("revoked", sa.String(40)),
)
JOBS = sa.Table(
    "serving_jobs",
    _meta,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model", sa.String(100)),
    sa.Column("version", sa.String(100)),
    sa.Column("status", sa.String(20)),
    sa.Column("token_id", sa.String(32)),
    sa.Column("request", sa.Text),
    sa.Column("result_id", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer),
    sa.Column("created", sa.String(40)),
    sa.Column("updated", sa.String(40)),
)
REVIEWS = sa.Table(
    "serving_reviews",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("result_id", sa.String(32)),
    sa.Column("reviewer", sa.String(200)),
    sa.Column("token_id", sa.String(32)),
    sa.Column("decision", sa.String(20)),
    sa.Column("dice", sa.Float),
    sa.Column("changed_voxels", sa.Integer),
    sa.Column("mask_sha256", sa.String(64)),
    sa.Column("comment", sa.Text),
    sa.Column("created", sa.String(40)),
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class TokenInfo:
    """A verified token: its id, name and scopes."""

    id: str
    name: str
    scopes: tuple[str, ...]


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Validated, de-duplicated scopes in canonical order."""
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise InvalidInputError(
            f"unknown scope(s) {bad}" if bad else "no scope given",
            where="--scope",
            hint=f"use one or more of {list(SCOPES)}",
        )
    return tuple(s for s in SCOPES if s in scopes)


class ServingDB:
    """Tokens, jobs and reviews in the database at ``url`` (migrated on open)."""

    def __init__(self, url: str | Path, *, engine: Engine | None = None) -> None:
        from aimd.store.engine import make_engine
        from aimd.store.migrate import upgrade

        self.engine = engine or make_engine(url)
        upgrade(self.engine, "serving")
        self._verified: dict[str, tuple[TokenInfo, float]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ tokens
    def create_token(self, scopes: list[str] | tuple[str, ...], *, name: str = "") -> tuple[str, str]:
        """A new token (shown once) and its id; only the argon2 hash is stored."""
        from argon2 import PasswordHasher

        ok = check_scopes(scopes)
        tid = secrets.token_hex(6)
        token = f"aimd_{tid}_{secrets.token_urlsafe(32)}"
        with self.engine.begin() as conn:
            conn.execute(
                TOKENS.insert().values(
                    id=tid,
                    name=name or tid,
                    scopes=" ".join(ok),
                    argon2_hash=PasswordHasher().hash(token),
                    created=_now(),
                    revoked=None,
                )
            )
        return token, tid

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token by id; False when there is no such active token."""
        with self.engine.begin() as conn:
            n = conn.execute(
                TOKENS.update().where(TOKENS.c.id == token_id, TOKENS.c.revoked.is_(None)).values(revoked=_now())
            ).rowcount
        with self._lock:
            self._verified = {k: v for k, v in self._verified.items() if v[0].id != token_id}
        return bool(n)

    def tokens(self) -> list[dict[str, Any]]:
        """Every token's id, name, scopes, creation and revocation time (never the hash)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(TOKENS.c.id, TOKENS.c.name, TOKENS.c.scopes, TOKENS.c.created, TOKENS.c.revoked).order_by(
                    TOKENS.c.created
                )
            ).all()
        return [{**r._asdict(), "scopes": r.scopes.split()} for r in rows]

    def check_token(self, token: str, *, cache_seconds: float = 30.0) -> TokenInfo:
        """The token's id and scopes; :class:`AuthenticationError` for an unknown or revoked token.

        A verified token is remembered (by its SHA-256) for ``cache_seconds`` so argon2 runs once per
        token and period, not per request; revocation clears the memory at once.
        """
        from argon2 import PasswordHasher
        from argon2.exceptions import InvalidHashError, VerificationError

        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._verified.get(key)
        if hit and time.monotonic() - hit[1] < cache_seconds:
            return hit[0]
        parts = token.split("_", 2)
        bad = AuthenticationError(
            "unknown or revoked token",
            where="Authorization",
            hint="create one with `aimd serve token create --scope infer`",
        )
        if len(parts) != 3 or parts[0] != "aimd":
            raise bad
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TOKENS).where(TOKENS.c.id == parts[1])).first()
        if row is None or row.revoked is not None:
            raise bad
        try:
            PasswordHasher().verify(row.argon2_hash, token)
        except (VerificationError, InvalidHashError):
            raise bad from None
        info = TokenInfo(row.id, row.name, tuple(row.scopes.split()))
        with self._lock:
            self._verified[key] = (info, time.monotonic())
        return info

    # ------------------------------------------------------------------ jobs
    def add_job(self, job_id: str, model: str, version: str, request: dict[str, Any], token_id: str | None) -> None:
        """Persist an accepted job as ``queued`` (committed before the client is told)."""
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(
                JOBS.insert().values(
                    id=job_id,
                    model=model,
                    version=version,
                    status="queued",
                    token_id=token_id,
                    request=json.dumps(request),
                    result_id=None,
                    error=None,
                    attempts=0,
                    created=now,
                    updated=now,
                )
            )

    def claim_job(self, job_id: str) -> bool:
        """Move ``job_id`` from queued to running; False when another worker (or nobody) may run it."""
        with self.engine.begin() as conn:
            n = conn.execute(
                JOBS.update()
                .where(JOBS.c.id == job_id, JOBS.c.status == "queued")
                .values(status="running", attempts=JOBS.c.attempts + 1, updated=_now())
            ).rowcount
        return n == 1

    def finish_job(self, job_id: str, *, result_id: str | None = None, error: str | None = None) -> None:
        """Mark a running job done (with its result) or failed (with its error)."""
        with self.engine.begin() as conn:
            conn.execute(
                JOBS.update()
                .where(JOBS.c.id == job_id)
                .values(status="failed" if error else "done", result_id=result_id, error=error, updated=_now())
            )

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job as a dict, ``None`` when unknown."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(JOBS).where(JOBS.c.id == job_id)).first()
        if row is None:
            return None
        out = row._asdict()
        out["request"] = json.loads(out["request"])
        return out

    def jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        """Jobs (optionally of one status), oldest first."""
        query = sa.select(JOBS.c.id).order_by(JOBS.c.created)
        if status:
            query = query.where(JOBS.c.status == status)
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(query)]
        return [j for j in (self.job(i) for i in ids) if j is not None]

    def recover_jobs(self) -> tuple[list[str], list[str]]:
        """At start-up: jobs left running are marked failed; the queued ones are returned to run."""
        with self.engine.begin() as conn:
            interrupted = [r.id for r in conn.execute(sa.select(JOBS.c.id).where(JOBS.c.status == "running"))]
            if interrupted:
                conn.execute(
                    JOBS.update()
                    .where(JOBS.c.id.in_(interrupted))
                    .values(
                        status="failed",
                        updated=_now(),
                        error="the service stopped while this job ran; it was not re-run (its results may be "
                        "partial): submit the request again",
                    )
                )
        return interrupted, [j["id"] for j in self.jobs("queued")]

    # ------------------------------------------------------------------ reviews
    def add_review(
        self,
        result_id: str,
        reviewer: str,
        decision: str,
        *,
        token_id: str | None,
        dice: float | None,
        changed_voxels: int | None,
        mask_sha256: str | None,
        comment: str = "",
    ) -> dict[str, Any]:
        """Store one clinician review and return it."""
        row = {
            "result_id": result_id,
            "reviewer": reviewer,
            "token_id": token_id,
            "decision": decision,
            "dice": dice,
            "changed_voxels": changed_voxels,
            "mask_sha256": mask_sha256,
            "comment": comment,
            "created": _now(),
        }
        with self.engine.begin() as conn:
            rid = conn.execute(REVIEWS.insert().values(**row)).inserted_primary_key
        return {"id": int(rid[0]) if rid else None, **row}

    def reviews(self, result_id: str) -> list[dict[str, Any]]:
        """Reviews of one result, oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(REVIEWS).where(REVIEWS.c.result_id == result_id).order_by(REVIEWS.c.id)).all()
        return [r._asdict() for r in rows]


__all__ = ["JOBS", "REVIEWS", "SCOPES", "TOKENS", "ServingDB", "TokenInfo", "check_scopes"]
