"""Several series per case: each further series with its stored registration onto the case's image.

Revision ID: p0003
Revises: p0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pf_case_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("series_key", sa.String(length=200), nullable=False),
        sa.Column("image_sha256", sa.String(length=64), nullable=False),
        sa.Column("image", sa.JSON(), nullable=False),
        sa.Column("resampled_sha256", sa.String(length=64), nullable=True),
        sa.Column("registration", sa.JSON(), nullable=False),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["pf_case.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "series_key"),
    )
    op.create_index(op.f("ix_pf_case_series_case_id"), "pf_case_series", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_table("pf_case_series")
