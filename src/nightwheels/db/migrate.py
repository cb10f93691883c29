"""Alembic migrations, run programmatically (no alembic.ini needed).

Every ``serve`` checks the schema first. Loading alembic and its migration environment
costs about half a second, so :func:`upgrade_if_behind` first compares the database's
revision with the head named in the migration files (read as text) and loads alembic only
when they differ.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_ASSIGNMENT = re.compile(r'^(revision|down_revision)\s*(?::[^=]*)?=\s*"?([^"\n]*)"?\s*$', re.M)


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_heads(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()


@cache
def script_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code, from their text.

    A revision is a head when no other names it as ``down_revision`` (what alembic computes,
    without importing each file; ``tests/test_cli_index.py`` checks the two agree).
    """
    revisions: set[str] = set()
    downs: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            downs.add(found.get("down_revision", ""))
    return frozenset(revisions - downs)


def database_revisions(url: str) -> set[str]:
    """The revision(s) the database is at; empty when it has no schema yet."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return set()
            return {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    finally:
        engine.dispose()


def upgrade_if_behind(url: str) -> bool:
    """Migrate to head unless already there; True if migrations ran."""
    if database_revisions(url) == set(script_heads()):
        return False
    upgrade(url)
    return True
