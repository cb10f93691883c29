"""The access migration on SQLite and PostgreSQL: schema equals the models, data survives."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from nightwheels.db.migrate import alembic_config, upgrade
from nightwheels.db.models import Base
from tests.support.backends import fresh_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    with fresh_database() as url:
        yield url


def test_upgrade_matches_models_keeps_tokens_and_downgrades(database_url: str) -> None:
    upgrade(database_url, "0001")
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, name, is_admin, created_at, disabled) "
                    "VALUES (1, 'alice', false, CURRENT_TIMESTAMP, false)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO tokens (user_id, name, prefix, digest, permissions, created_at) "
                    "VALUES (1, 'ci', 'abcdefabcdef', 'd', '[\"upload\"]', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(database_url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            assert conn.execute(text("SELECT user_id, name FROM tokens")).all() == [(1, "ci")]
        # A publisher token (no user) is now possible; jti is unique.
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tokens (user_id, name, prefix, digest, permissions, created_at, jti)"
                    " VALUES (NULL, 'oidc', '000000000001', 'd', '[]', CURRENT_TIMESTAMP, 'j1')"
                )
            )
        with pytest.raises(Exception, match=r"(?i)unique"), engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tokens (user_id, name, prefix, digest, permissions, created_at, jti)"
                    " VALUES (NULL, 'oidc', '000000000002', 'd', '[]', CURRENT_TIMESTAMP, 'j1')"
                )
            )
        command.downgrade(alembic_config(database_url), "0001")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM tokens")).scalars().all() == ["ci"]
        upgrade(database_url)
    finally:
        engine.dispose()
