"""scale: index projects.serial for the cross-process change poll

Revision ID: scale_1
Revises: retention_1
Create Date: 2026-11-26 12:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "scale_1"
down_revision = "retention_1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.create_index("ix_projects_serial", ["serial"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_index("ix_projects_serial")
