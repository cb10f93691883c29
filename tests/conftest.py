from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.backends import BACKENDS, Backend, MotoS3, open_backend
from tests.support.oidc import Issuer
from tests.support.server import LiveServer, ServerFactory

# The longest test files, longest first (by `pytest --durations` on two cores). xdist's
# loadfile scheduler hands out files in collection order: starting these first keeps a long
# file from running alone at the end of the run while the other workers sit idle.
LONGEST_FIRST = (
    "tests/test_nightly_testing.py",
    "tests/test_retention_reliability.py",
    "tests/test_scale_out.py",
    "tests/test_readme.py",
    "tests/test_index_clients.py",
    "tests/test_file_identity.py",
    "tests/test_hostile_uploads.py",
    "tests/test_migrate_storage.py",
    "tests/test_faults.py",
    "tests/test_access_cli.py",
    "tests/web/test_signed_in.py",
    "tests/test_upload.py",
    "tests/test_server_limits.py",
    "tests/test_export_static.py",
    "tests/test_api_fuzz.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable


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
def live_server(tmp_path: Path, backend: Backend) -> Iterator[ServerFactory]:
    """Make live servers: ``live_server(env={"NIGHTWHEELS_...": ...})``, stopped at the end.

    Each gets its own data directory under ``tmp_path`` (``name``, default ``data``,
    ``data2``...) on the test's backend unless another is given; ``in_thread=False`` for a
    server process (signals, memory, logs); ``start=False`` to prepare its data first.
    """
    made: list[LiveServer] = []

    def make(
        *,
        env: dict[str, str] | None = None,
        name: str | None = None,
        backend: Backend | None = None,
        in_thread: bool = True,
        start: bool = True,
    ) -> LiveServer:
        data = tmp_path / (name or f"data{len(made) + 1 if made else ''}")
        data.mkdir(exist_ok=True)
        live = LiveServer(
            data=data, env=dict(env or {}), backend=backend or default, in_thread=in_thread
        )
        made.append(live)
        if start:
            live.start()
        return live

    default = backend
    try:
        yield make
    finally:
        for live in reversed(made):
            live.stop()


@pytest.fixture
def server(live_server: ServerFactory, request: pytest.FixtureRequest) -> LiveServer:
    """A live server on a free loopback port with an empty index, on each backend.

    In a thread of the test process; a process for tests marked ``server_process``.
    """
    return live_server(in_thread=request.node.get_closest_marker("server_process") is None)


@pytest.fixture
def uploader(server: LiveServer) -> str:
    """A token for user ``alice`` (member of project ``demo``), upload scope."""
    server.create_user("alice")
    return server.token("alice", "demo")


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    """A stand-in OIDC issuer (GitHub Actions' role) on loopback: keys, signed tokens."""
    issuer = Issuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture
def uv_cache(tmp_path: Path) -> Path:
    """A fresh uv cache per test: same-named nightlies must never come from a stale cache."""
    return tmp_path / "uv-cache"
