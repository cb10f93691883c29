from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import BACKENDS, Backend, MotoS3, open_backend
from tests.support.server import LiveServer


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """moto's S3 server on loopback, started once, only when a test needs it."""
    server = MotoS3(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """SQLite + folder, or a fresh PostgreSQL database + S3 bucket (marker ``postgres``)."""
    with open_backend(request) as created:
        yield created


@pytest.fixture
def scaled(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Always the scale-out backend: a fresh PostgreSQL database and S3 bucket."""
    with open_backend(request, "postgres") as created:
        yield created


@pytest.fixture
def server(tmp_path: Path, backend: Backend) -> Iterator[LiveServer]:
    """A live server on a free loopback port with an empty index, on each backend."""
    live = LiveServer(data=tmp_path / "data", backend=backend)
    live.data.mkdir()
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def uploader(server: LiveServer) -> str:
    """A token for user ``alice`` (member of project ``demo``), upload scope."""
    server.create_user("alice")
    return server.token("alice", "demo")


@pytest.fixture
def uv_cache(tmp_path: Path) -> Path:
    """A fresh uv cache per test: same-named nightlies must never come from a stale cache."""
    return tmp_path / "uv-cache"
