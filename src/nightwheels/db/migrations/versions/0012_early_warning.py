"""early warning: failure sets and first bad builds in the compatibility record, known-bad
builds, upstream alert channels and alerts

Revision ID: 0012_early_warning
Revises: 0011_upload_sessions
Create Date: 2026-12-07 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightwheels.db.models import UTCDateTime

revision = "0012_early_warning"
down_revision = "0011_upload_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compat_runs") as batch:
        batch.add_column(sa.Column("failures", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("compat_nightlies") as batch:
        batch.add_column(
            sa.Column("first_bad", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "known_bad_builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("marked_by", sa.String(length=200), nullable=False),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "sha256", name="uq_known_bad_project_sha256"),
    )
    op.create_table(
        "alert_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("secret", sa.String(length=500), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "upstream_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("upstream", sa.String(length=200), nullable=False),
        sa.Column("build_sha256", sa.String(length=64), nullable=False),
        sa.Column("build_filename", sa.String(length=255), nullable=False),
        sa.Column("build_version", sa.String(length=100), nullable=False),
        sa.Column("downstream", sa.String(length=200), nullable=False),
        sa.Column("failures_key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("run_url", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("last_run_id", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("deliveries", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "upstream", "build_sha256", "downstream", "failures_key", name="uq_upstream_alerts_key"
        ),
    )
    op.create_index("ix_upstream_alerts_state", "upstream_alerts", ["state", "upstream"])


def downgrade() -> None:
    op.drop_index("ix_upstream_alerts_state", table_name="upstream_alerts")
    op.drop_table("upstream_alerts")
    op.drop_table("alert_channels")
    op.drop_table("known_bad_builds")
    with op.batch_alter_table("compat_nightlies") as batch:
        batch.drop_column("first_bad")
    with op.batch_alter_table("compat_runs") as batch:
        batch.drop_column("failures")
