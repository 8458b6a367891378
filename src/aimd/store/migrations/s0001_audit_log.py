"""Append-only, hash-chained audit log.

Revision ID: s0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "s0001"
down_revision = None
branch_labels = None
depends_on = None

_PG_GUARD = """
CREATE OR REPLACE FUNCTION aimd_audit_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'aimd_audit_log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "aimd_audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("timestamp", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(400), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_sha256", sa.String(64), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_aimd_audit_log_subject", "aimd_audit_log", ["subject"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(_PG_GUARD)
        op.execute(
            "CREATE TRIGGER aimd_audit_log_no_change BEFORE UPDATE OR DELETE ON aimd_audit_log "
            "FOR EACH ROW EXECUTE FUNCTION aimd_audit_log_append_only()"
        )
        op.execute(
            "CREATE TRIGGER aimd_audit_log_no_truncate BEFORE TRUNCATE ON aimd_audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION aimd_audit_log_append_only()"
        )
        op.execute("REVOKE UPDATE, DELETE, TRUNCATE ON aimd_audit_log FROM PUBLIC")
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER aimd_audit_log_no_{what.lower()} BEFORE {what} ON aimd_audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'aimd_audit_log is append-only: {what} refused'); END"
            )


def downgrade() -> None:
    op.drop_table("aimd_audit_log")
