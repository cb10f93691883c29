"""files: identity columns (normalised version, wheel tags), one live file per identity

Revision ID: 0010_upload_file_identity
Revises: 0009_ops_1_project_aggregates
Create Date: 2026-12-07 03:00:00.000000

Existing rows get their keys from their filenames. Where several live files of one
label already share an identity (the same version and tags under other spellings, or
with build tags), the newest stays live and the others are marked replaced, as a new
upload would have done; then the unique index makes it a rule of the database.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from nightwheels.core.filenames import parse_filename
from nightwheels.db.models import UTCDateTime
from nightwheels.errors import InvalidFilename

revision = "0010_upload_file_identity"
down_revision = "0009_ops_1_project_aggregates"
branch_labels = None
depends_on = None

BATCH = 5000


def _keys(filename: str, version: str) -> tuple[str, str]:
    try:
        dist = parse_filename(filename)
    except InvalidFilename:  # accepted by older rules: an identity of its own
        return version, f"file:{filename}"[:255]
    return dist.version_key, dist.tag_key


def upgrade() -> None:
    with op.batch_alter_table("files") as batch:
        batch.add_column(sa.Column("version_key", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("tag_key", sa.String(length=255), nullable=True))
    bind = op.get_bind()
    files = sa.table(
        "files",
        sa.column("id", sa.Integer),
        sa.column("project_id", sa.Integer),
        sa.column("label", sa.String),
        sa.column("filename", sa.String),
        sa.column("version", sa.String),
        sa.column("version_key", sa.String),
        sa.column("tag_key", sa.String),
        sa.column("uploaded_at", UTCDateTime()),
        sa.column("removed_at", UTCDateTime()),
        sa.column("removed_reason", sa.String),
    )
    set_keys = (
        files.update()
        .where(files.c.id == sa.bindparam("file_id"))
        .values(version_key=sa.bindparam("vk"), tag_key=sa.bindparam("tk"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(files.c.id, files.c.filename, files.c.version)
            .where(files.c.id > last)
            .order_by(files.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        params = []
        for file_id, filename, version in rows:
            vk, tk = _keys(filename, version)
            params.append({"file_id": file_id, "vk": vk, "tk": tk})
        bind.execute(set_keys, params)
        last = rows[-1][0]
    live = files.c.removed_at.is_(None)
    identity = (files.c.project_id, files.c.label, files.c.version_key, files.c.tag_key)
    clashes = bind.execute(
        sa.select(*identity).where(live).group_by(*identity).having(sa.func.count() > 1)
    ).all()
    now = datetime.now(UTC)
    changed: set[int] = set()
    for project_id, label, vk, tk in clashes:
        changed.add(project_id)
        rows = bind.execute(
            sa.select(files.c.id)
            .where(
                live,
                files.c.project_id == project_id,
                files.c.label == label,
                files.c.version_key == vk,
                files.c.tag_key == tk,
            )
            .order_by(files.c.uploaded_at.desc(), files.c.id.desc())
        ).all()
        older = [row[0] for row in rows[1:]]
        bind.execute(
            files.update()
            .where(files.c.id.in_(older))
            .values(removed_at=now, removed_reason="replaced")
        )
    for project_id in sorted(changed):
        _refresh(bind, project_id)
    op.create_index(
        "uq_files_identity",
        "files",
        ["project_id", "label", "version_key", "tag_key"],
        unique=True,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )


def _refresh(bind: sa.Connection, project_id: int) -> None:
    """A changed project: its aggregates (services/stats.py) again, and a new serial."""
    live = "f.removed_at IS NULL"
    mine = "f.project_id = projects.id"
    bind.execute(
        sa.text(
            f"""
            UPDATE projects SET
              live_files = (SELECT count(*) FROM files f WHERE {mine} AND {live}),
              live_bytes = (SELECT coalesce(sum(f.size), 0) FROM files f WHERE {mine} AND {live}),
              live_versions = (SELECT count(DISTINCT f.version) FROM files f
                               WHERE {mine} AND {live}),
              history_files = (SELECT count(*) FROM files f WHERE {mine} AND NOT ({live})),
              history_bytes = (SELECT coalesce(sum(f.size), 0) FROM files f
                               WHERE {mine} AND NOT ({live}))
            WHERE id = :pid
            """
        ),
        {"pid": project_id},
    )
    bind.execute(sa.text("UPDATE index_state SET serial = serial + 1 WHERE id = 1"))
    bind.execute(
        sa.text(
            "UPDATE projects SET serial = (SELECT serial FROM index_state WHERE id = 1) "
            "WHERE id = :pid"
        ),
        {"pid": project_id},
    )


def downgrade() -> None:
    op.drop_index("uq_files_identity", table_name="files")
    with op.batch_alter_table("files") as batch:
        batch.drop_column("tag_key")
        batch.drop_column("version_key")
