"""Helpers for web UI tests: publish wheels over HTTP, move upload times into the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import select, update

from nightwheels.config import Settings
from nightwheels.db.engine import Database
from nightwheels.db.models import File, Project
from nightwheels.services import stats
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel


def upload(server: LiveServer, token: str, wheel: Path) -> httpx.Response:
    """Upload one file through the legacy endpoint, as twine does."""
    response = post_wheel(server, token, wheel, timeout=30)
    assert response.status_code == 200, response.text
    return response


def publish(
    server: LiveServer, token: str, tmp: Path, name: str, version: str, *tags: str
) -> list[Path]:
    wheels = [make_wheel(tmp / "dist", name, version, tag) for tag in tags or ("py3-none-any",)]
    for wheel in wheels:
        upload(server, token, wheel)
    return wheels


def database(server: LiveServer) -> Database:
    return Database(Settings(data=server.data).database)


def backdate(server: LiveServer, project: str, days: float, version: str | None = None) -> None:
    """Pretend a project's files (or one version's) were uploaded ``days`` ago."""
    db = database(server)
    try:
        with db.write() as session:
            project_id = session.execute(
                select(Project.id).where(Project.name == project)
            ).scalar_one()
            stmt = update(File).where(File.project_id == project_id)
            if version is not None:
                stmt = stmt.where(File.version == version)
            session.execute(stmt.values(uploaded_at=datetime.now(UTC) - timedelta(days=days)))
            stats.refresh_all(session)  # rows edited by hand: aggregates and uploads per day
    finally:
        db.dispose()
