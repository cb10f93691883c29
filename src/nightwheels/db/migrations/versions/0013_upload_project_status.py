"""projects: PEP 792 status (active, archived, deprecated, quarantined) and its reason

Revision ID: 0013_upload_project_status
Revises: 0012_early_warning
Create Date: 2026-12-07 03:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_upload_project_status"
down_revision = "0012_early_warning"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("status", sa.String(length=20), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("status_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("status_reason")
        batch.drop_column("status")
