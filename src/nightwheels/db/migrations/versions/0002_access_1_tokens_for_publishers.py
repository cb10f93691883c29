"""access: publisher tokens without a user, single-use OIDC jti, indexes

Revision ID: access_1
Revises: 0001
Create Date: 2026-11-26 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "access_1"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("jti", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_tokens_jti", ["jti"])
        batch_op.create_index("ix_tokens_user", ["user_id"], unique=False)
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.create_index("ix_access_requests_status", ["status"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_audit_project", ["project", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_project")
    with op.batch_alter_table("access_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_access_requests_status")
    op.execute("DELETE FROM tokens WHERE user_id IS NULL")
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_tokens_user")
        batch_op.drop_constraint("uq_tokens_jti", type_="unique")
        batch_op.drop_column("jti")
        batch_op.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
