"""web: browser sessions, index on files.uploaded_at (recent uploads, uploads per day)

Revision ID: web_1
Revises: nightly_testing_1
Create Date: 2026-11-26 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import nightwheels.db.models

revision = "web_1"
down_revision = "nightly_testing_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", nightwheels.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", nightwheels.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", nightwheels.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_web_sessions_user", ["user_id"], unique=False)
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_uploaded_at", ["uploaded_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_uploaded_at")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_web_sessions_user")
    op.drop_table("web_sessions")
