"""retention: freshness notices, index on files.removed_at

Revision ID: retention_1
Revises: web_1
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nightwheels.db.models

revision = "retention_1"
down_revision = "web_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "freshness_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("notifier", sa.String(length=50), nullable=False),
        sa.Column("episode", nightwheels.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=True),
        sa.Column("ref", sa.String(length=300), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column(
            "suppressed_until", nightwheels.db.models.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("updated_at", nightwheels.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "notifier"),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_removed_at", ["removed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_removed_at")
    op.drop_table("freshness_notices")
