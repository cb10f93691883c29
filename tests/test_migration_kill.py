"""SIGKILL during a database migration: the next upgrade completes, to the same schema."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from nightwheels.db.migrate import upgrade


def schema(db: Path) -> list[tuple[str, list[str]]]:
    """Tables and indexes, each as its sorted definition lines (batch mode orders FKs freely)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    return sorted(
        (name, sorted(line.strip().rstrip(",") for line in sql.splitlines())) for name, sql in rows
    )


def _upgrade(url: str) -> None:
    upgrade(url)


@pytest.mark.parametrize("delay", [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12])
def test_sigkill_during_migration_then_upgrade_completes(tmp_path: Path, delay: float) -> None:
    reference = tmp_path / "reference.db"
    upgrade(f"sqlite:///{reference}")
    db = tmp_path / "killed.db"
    url = f"sqlite:///{db}"
    child = multiprocessing.get_context("fork").Process(target=_upgrade, args=(url,))
    child.start()
    deadline = time.monotonic() + 30
    while not (db.exists() and db.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    upgrade(url)  # what `nightwheels serve` / `db upgrade` runs on the next start
    assert schema(db) == schema(reference)
    with sqlite3.connect(db) as conn:
        versions = conn.execute("SELECT version_num FROM alembic_version").fetchall()
    with sqlite3.connect(reference) as conn:
        assert versions == conn.execute("SELECT version_num FROM alembic_version").fetchall()
