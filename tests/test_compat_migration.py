"""The compatibility-record migration goes up and down on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from nightwheels.db.migrate import upgrade
from tests.support.backends import fresh_database


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    from alembic import command

    from nightwheels.db.migrate import alembic_config

    upgrade(url, "0001")
    assert "compat_runs" not in _tables(url)
    upgrade(url, "nightly_testing_1")
    assert {"compat_runs", "compat_nightlies"} <= _tables(url)
    command.downgrade(alembic_config(url), "-1")  # back to the revision before ours
    assert not {"compat_runs", "compat_nightlies"} & _tables(url)
    upgrade(url, "nightly_testing_1")
    assert {"compat_runs", "compat_nightlies"} <= _tables(url)


def test_sqlite(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'db.sqlite'}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.mark.postgres
def test_postgresql(pg_url: str) -> None:
    _round_trip(pg_url)
