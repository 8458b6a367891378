"""Inference service: API tokens, persisted jobs, clinician reviews.

Revision ID: v0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "v0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(200), nullable=False),
        sa.Column("argon2_hash", sa.String(200), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("revoked", sa.String(40), nullable=True),
    )
    op.create_table(
        "serving_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("result_id", sa.String(32), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("updated", sa.String(40), nullable=False),
    )
    op.create_index("ix_serving_jobs_status", "serving_jobs", ["status"])
    op.create_table(
        "serving_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.String(32), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=True),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("dice", sa.Float, nullable=True),
        sa.Column("changed_voxels", sa.Integer, nullable=True),
        sa.Column("mask_sha256", sa.String(64), nullable=True),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.String(40), nullable=False),
    )
    op.create_index("ix_serving_reviews_result", "serving_reviews", ["result_id"])


def downgrade() -> None:
    op.drop_table("serving_reviews")
    op.drop_table("serving_jobs")
    op.drop_table("serving_tokens")
