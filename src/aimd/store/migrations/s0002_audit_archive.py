"""Audit retention: archived segments are recorded first; only archived entries may then be deleted.

``aimd_audit_archive`` holds one append-only row per archived segment (its file, SHA-256, the sequence
range and the hash the next kept entry links to). The append-only guard of ``aimd_audit_log`` now lets a
DELETE through for entries whose sequence number an archive row covers, and for nothing else.

Revision ID: s0002
Revises: s0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None

_COVERED = "EXISTS (SELECT 1 FROM aimd_audit_archive WHERE OLD.seq <= through_seq)"

_PG_LOG_GUARD = f"""
CREATE OR REPLACE FUNCTION aimd_audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND {_COVERED} THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'aimd_audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""

_PG_ARCHIVE_GUARD = """
CREATE OR REPLACE FUNCTION aimd_audit_archive_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'aimd_audit_archive is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "aimd_audit_archive",
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
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_LOG_GUARD)
        op.execute(_PG_ARCHIVE_GUARD)
        op.execute(
            "CREATE TRIGGER aimd_audit_archive_no_change BEFORE UPDATE OR DELETE ON aimd_audit_archive "
            "FOR EACH ROW EXECUTE FUNCTION aimd_audit_archive_append_only()"
        )
        op.execute(
            "CREATE TRIGGER aimd_audit_archive_no_truncate BEFORE TRUNCATE ON aimd_audit_archive "
            "FOR EACH STATEMENT EXECUTE FUNCTION aimd_audit_archive_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON aimd_audit_archive FROM PUBLIC")
        return
    op.execute("DROP TRIGGER aimd_audit_log_no_delete")
    op.execute(
        f"CREATE TRIGGER aimd_audit_log_no_delete BEFORE DELETE ON aimd_audit_log WHEN NOT {_COVERED} "
        "BEGIN SELECT RAISE(ABORT, 'aimd_audit_log is append-only: DELETE refused'); END"
    )
    for what in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER aimd_audit_archive_no_{what.lower()} BEFORE {what} ON aimd_audit_archive "
            f"BEGIN SELECT RAISE(ABORT, 'aimd_audit_archive is append-only: {what} refused'); END"
        )


def downgrade() -> None:
    raise NotImplementedError("archived audit segments cannot be un-archived")
