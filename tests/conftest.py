from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    """A live server on a free loopback port with an empty embedded index."""
    live = LiveServer(data=tmp_path / "data")
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
