"""The time step of the last one-time code accepted for an account: a TOTP code is good once.

Revision ID: p0006
Revises: p0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0006"
down_revision = "p0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pf_user") as batch:
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pf_user") as batch:
        batch.drop_column("totp_last_step")
