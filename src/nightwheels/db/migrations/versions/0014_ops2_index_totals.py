"""index_state: the index's totals (projects, live files, their bytes), kept by delta

Revision ID: 0014_ops2_index_totals
Revises: 0013_upload_project_status
Create Date: 2026-12-07 05:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_ops2_index_totals"
down_revision = "0013_upload_project_status"
branch_labels = None
depends_on = None

_COLUMNS = ("projects", "live_files", "live_bytes")


def upgrade() -> None:
    with op.batch_alter_table("index_state", schema=None) as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    # Filled once from the per-project aggregates; afterwards every serial bump adds its
    # project's change (services/serials.py). A project counts from its first serial.
    op.execute(
        """
        UPDATE index_state SET
          projects = (SELECT count(*) FROM projects WHERE serial > 0),
          live_files = (SELECT coalesce(sum(live_files), 0) FROM projects),
          live_bytes = (SELECT coalesce(sum(live_bytes), 0) FROM projects)
        WHERE id = 1
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("index_state", schema=None) as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
