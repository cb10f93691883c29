"""trusted_publishers: pinned GitHub owner and repository ids, and an optional ref

Revision ID: 0008_tp_publisher_pins
Revises: lead_1
Create Date: 2026-12-07 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_tp_publisher_pins"
down_revision = "lead_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trusted_publishers") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("repository_owner_id", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("repository_id", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trusted_publishers") as batch:
        batch.drop_column("repository_id")
        batch.drop_column("repository_owner_id")
        batch.drop_column("ref")
