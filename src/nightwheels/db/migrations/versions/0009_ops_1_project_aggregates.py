"""ops: per-project file aggregates and uploads per day, so index-wide pages read no file rows

Revision ID: 0009_ops_1_project_aggregates
Revises: 0008_tp_publisher_pins
Create Date: 2026-12-07 02:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from nightwheels.db.models import UTCDateTime

revision = "0009_ops_1_project_aggregates"
down_revision = "0008_tp_publisher_pins"
branch_labels = None
depends_on = None

_COUNTERS = ("live_files", "live_bytes", "live_versions", "history_files", "history_bytes")


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        for name in _COUNTERS:
            kind = sa.Integer() if name == "live_versions" else sa.BigInteger()
            batch_op.add_column(sa.Column(name, kind, nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_upload_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("last_live_upload_at", UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_projects_last_live_upload", ["last_live_upload_at", "name"], unique=False
        )
    op.create_table(
        "upload_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    # Fill both from the rows already there (once; afterwards they are kept current).
    live = "f.removed_at IS NULL"
    op.execute(
        f"""
        UPDATE projects SET
          live_files = (SELECT count(*) FROM files f WHERE f.project_id = projects.id AND {live}),
          live_bytes = (SELECT coalesce(sum(f.size), 0) FROM files f
                        WHERE f.project_id = projects.id AND {live}),
          live_versions = (SELECT count(DISTINCT f.version) FROM files f
                           WHERE f.project_id = projects.id AND {live}),
          history_files = (SELECT count(*) FROM files f
                           WHERE f.project_id = projects.id AND NOT ({live})),
          history_bytes = (SELECT coalesce(sum(f.size), 0) FROM files f
                           WHERE f.project_id = projects.id AND NOT ({live})),
          last_upload_at = (SELECT max(f.uploaded_at) FROM files f
                            WHERE f.project_id = projects.id),
          last_live_upload_at = (SELECT max(f.uploaded_at) FROM files f
                                 WHERE f.project_id = projects.id AND {live})
        """
    )
    bind = op.get_bind()
    day = (
        "to_char(uploaded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        if bind.dialect.name == "postgresql"
        else "substr(uploaded_at, 1, 10)"
    )
    op.execute(
        f"INSERT INTO upload_days (day, files) SELECT {day}, count(*) FROM files GROUP BY {day}"
    )


def downgrade() -> None:
    op.drop_table("upload_days")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_last_live_upload")
        for name in (*_COUNTERS, "last_upload_at", "last_live_upload_at"):
            batch_op.drop_column(name)
