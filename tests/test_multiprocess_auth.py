"""Auth across server processes, and security headers on error responses too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import LiveServer


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(data=tmp_path_factory.mktemp("workers") / "data")
    server.data.mkdir()
    server.start("--workers", "2")
    try:
        server.create_user("alice")
        yield server
    finally:
        server.stop()


def me(server: LiveServer, token: str) -> int:
    # A new connection per request, so that both processes answer over the loop.
    return httpx.get(
        f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).status_code


def test_a_revoked_token_is_refused_at_once_by_every_process(two_workers: LiveServer) -> None:
    token = two_workers.token("alice", "demo")
    assert [me(two_workers, token) for _ in range(20)] == [200] * 20
    prefix = token.split("_")[1]
    two_workers.cli("token", "revoke", prefix)
    assert [me(two_workers, token) for _ in range(20)] == [401] * 20


def test_security_headers_on_error_responses(two_workers: LiveServer, tmp_path: Path) -> None:
    token = two_workers.token("alice", "demo")
    url = two_workers.url
    auth = ("__token__", token)
    responses = {
        "401 upload": httpx.post(f"{url}/legacy/", content=b"x"),
        "400 upload": httpx.post(f"{url}/legacy/", content=b"x", auth=auth),
        "404 file": httpx.get(f"{url}/files/{'0' * 64}/demo-1-py3-none-any.whl"),
        "404 api": httpx.get(f"{url}/api/v1/projects/nope"),
        "405": httpx.delete(f"{url}/simple/"),
        "401 api": httpx.get(f"{url}/api/v1/me"),
    }
    for what, response in responses.items():
        assert response.status_code == int(what.split()[0]), (what, response.status_code)
        assert response.headers.get("x-content-type-options") == "nosniff", what
        assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", ""), what


def test_failed_attempts_are_counted_across_processes(two_workers: LiveServer) -> None:
    """The throttle's count is shared: two processes do not give a source twice the tries."""
    limit = 30  # NIGHTWHEELS_AUTH_FAILURES_PER_MINUTE's default
    statuses = []
    for _ in range(2 * limit):
        # A new connection per attempt (so both processes answer), from a source of its own.
        transport = httpx.HTTPTransport(local_address="127.0.0.7")
        with httpx.Client(transport=transport, timeout=10) as client:
            response = client.get(
                f"{two_workers.url}/api/v1/me", headers={"Authorization": "Bearer nwt_wrong"}
            )
        statuses.append(response.status_code)
    assert set(statuses) == {401, 429}
    # Each process blocks the source once it has recorded a failure past the shared limit.
    assert limit <= statuses.count(401) <= limit + 1
    assert statuses[-1] == 429
    # Another source is not affected.
    assert me(two_workers, "nwt_wrong") == 401
