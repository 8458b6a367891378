"""A project's limit on the final Mattes MI of a series registration (worse → the registration fails).

Revision ID: p0004
Revises: p0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0004"
down_revision = "p0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pf_project") as batch:
        batch.add_column(sa.Column("registration_max_mi", sa.Float(), nullable=False, server_default=sa.text("-0.1")))


def downgrade() -> None:
    with op.batch_alter_table("pf_project") as batch:
        batch.drop_column("registration_max_mi")
