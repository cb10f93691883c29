"""auth_failures: failed authentications, shared by every server process for the throttle

Revision ID: lead_1
Revises: scale_1
Create Date: 2026-11-25 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightwheels.db.models import UTCDateTime

revision = "lead_1"
down_revision = "scale_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auth_failures_source_at", "auth_failures", ["source", "at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_source_at", table_name="auth_failures")
    op.drop_table("auth_failures")
