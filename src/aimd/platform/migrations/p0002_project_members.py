"""Per-project member lists: a members-only project is seen and worked on by its members only.

Revision ID: p0002
Revises: p0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0002"
down_revision = "p0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pf_project") as batch:
        batch.add_column(sa.Column("members_only", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "pf_project_member",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["pf_project.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["pf_user.id"]),
        sa.PrimaryKeyConstraint("project_id", "user_id"),
    )
    op.create_index(op.f("ix_pf_project_member_user_id"), "pf_project_member", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("pf_project_member")
    with op.batch_alter_table("pf_project") as batch:
        batch.drop_column("members_only")
