"""A database that is full or unreachable: answers a person can act on, quiet logs, honest health.

- Issue 14 item 11: SQLite full (``PRAGMA max_page_count``: SQLite's own SQLITE_FULL, the
  error a full disk gives) -> 507 on upload, login and a bad token; nothing half-written.
- Issue 19 item 3: PostgreSQL refusing connections -> 503 with the cause and Retry-After;
  the serial poll logs the outage once, then at a limited rate, and logs the recovery.
- Issue 19 item 4: /-/health checks the database and the blob store, within a bound, and
  says which one failed; /-/live answers without either.
"""

from __future__ import annotations

import logging
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nightwheels.db.failures import DATABASE_OUTAGE
from nightwheels.services import accounts
from nightwheels.services.audit import SYSTEM
from tests.support.backends import _pg_admin, fresh_database
from tests.support.seed import add_file
from tests.support.uploads import encode_parts, legacy_form
from tests.support.wheels import make_wheel
from tests.test_server_edge import drive, make_app

PASSWORD = "a long enough password"


def _user_and_token(app, name: str = "ann") -> str:  # type: ignore[no-untyped-def]
    services = app.state.nightwheels.services
    with services.db.write() as session:
        user = accounts.create_user(session, SYSTEM, name)
        accounts.set_password(session, SYSTEM, user, PASSWORD)
        return accounts.create_token_as_admin(
            session, SYSTEM, user, name="t", projects=["demo"], permission="upload"
        ).secret


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own (tmpfs; needs root, as CI runs)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_full_database_disk_is_507_and_nothing_is_lost(tmp_path: Path, small_disk: Path) -> None:
    """The database on a full disk (the blobs elsewhere, with room): 507 on upload, login and
    a bad token; after room is made, the same upload succeeds and the rest is intact."""
    app = make_app(tmp_path, database_url=f"sqlite:///{small_disk / 'index.sqlite'}")
    token = _user_and_token(app)
    services = app.state.nightwheels.services
    wheel = make_wheel(tmp_path, "demo", "1.0")
    content_type, body = encode_parts(legacy_form(wheel))
    auth = httpx.BasicAuth("__token__", token)
    services.db.dispose()
    with sqlite3.connect(small_disk / "index.sqlite") as connection:  # no WAL space to reuse
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = _fill(small_disk)

    async def upload(http: httpx.AsyncClient) -> httpx.Response:
        return await http.post(
            "/legacy/", content=body, headers={"Content-Type": content_type}, auth=auth
        )

    async def run(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
        full = {
            "upload": await upload(http),
            "login": await http.post("/api/v1/login", json={"user": "ann", "password": PASSWORD}),
            "bad token": await http.get(
                "/api/v1/me", headers={"Authorization": "Bearer nwt_0000_wrong"}
            ),
            "page": await http.get("/simple/demo/"),
        }
        filler.unlink()
        full["retried"] = await upload(http)
        full["listed"] = await http.get("/simple/demo/")
        full["me"] = await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        return full

    responses = drive(app, run)
    for what in ("upload", "login", "bad token"):
        response = responses[what]
        assert response.status_code == 507, (what, response.status_code, response.text)
        assert "storage is full" in response.text and "Traceback" not in response.text
    assert responses["page"].status_code == 404  # nothing listed
    assert responses["retried"].status_code == 200, responses["retried"].text
    assert "demo-1.0-py3-none-any.whl" in responses["listed"].text
    assert responses["me"].status_code == 200


def _blackhole() -> socket.socket:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def test_health_says_which_dependency_failed_within_its_bound(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    state = app.state.nightwheels
    state.readiness.timeout = 0.5

    async def run(http: httpx.AsyncClient) -> list[httpx.Response]:
        healthy = await http.get("/-/health")
        shutil.rmtree(state.services.store.root)  # the blob folder is gone
        missing = await http.get("/-/health")
        live = await http.get("/-/live")
        return [healthy, missing, live]

    healthy, missing, live = drive(app, run)
    assert healthy.status_code == 200 and healthy.json()["checks"] == {
        "database": "ok",
        "blob store": "ok",
    }
    assert missing.status_code == 503 and missing.headers["retry-after"]
    assert missing.json()["checks"]["database"] == "ok"
    assert missing.json()["message"].startswith("the blob store failed: the blob folder")
    assert live.status_code == 200


def test_health_of_a_store_that_never_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hole = _blackhole()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{hole.getsockname()[1]}")
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    try:
        app = make_app(tmp_path, storage="s3://nowhere")
        app.state.nightwheels.readiness.timeout = 0.5

        async def run(http: httpx.AsyncClient) -> list[httpx.Response]:
            return [await http.get("/-/health"), await http.get("/-/health")]

        first, second = drive(app, run)
    finally:
        hole.close()
    for response in (first, second):
        assert response.status_code == 503
        assert response.json()["message"] == "the blob store failed: no answer within 0.5 s"
        assert response.json()["checks"]["database"] == "ok"


@pytest.mark.postgres
def test_database_outage_is_503_logged_once_and_recovery_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with fresh_database() as url:
        name = url.rsplit("/", 1)[1]
        app = make_app(tmp_path, database_url=url)
        state = app.state.nightwheels
        token = _user_and_token(app)
        add_file(state.services, "demo", "1.0")

        async def run(http: httpx.AsyncClient) -> dict[str, object]:
            out: dict[str, object] = {"before": await http.get("/simple/demo/")}
            _pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            _pg_admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )
            state.services.db.dispose()
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="nightwheels"):
                for _ in range(5):
                    state.pages.poll_once()
                out["poll logs"] = [r.getMessage() for r in caplog.records]
                out["page"] = await http.get(  # not rendered yet: needs the database
                    "/simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
                )
                out["upload"] = await http.post("/legacy/", content=b"x", auth=("__token__", token))
                out["health"] = await http.get("/-/health")
                out["cached"] = await http.get("/simple/demo/")
                _pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
                caplog.clear()
                state.pages.poll_once()
                out["recovery logs"] = [r.getMessage() for r in caplog.records]
            return out

        try:
            out = drive(app, run)
        finally:
            _pg_admin(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert out["before"].status_code == 200  # type: ignore[attr-defined]
    poll_logs = out["poll logs"]
    assert len(poll_logs) == 1 and poll_logs[0].startswith("the database is failing")  # type: ignore[index, arg-type]
    for what in ("page", "upload", "health"):
        response = out[what]
        assert response.status_code == 503, (what, response.text)  # type: ignore[attr-defined]
        assert int(response.headers["retry-after"]) > 0  # type: ignore[attr-defined]
        assert "database" in response.text  # type: ignore[attr-defined]
    assert out["cached"].status_code == 200  # type: ignore[attr-defined]  # served from memory
    recovery = out["recovery logs"]
    assert len(recovery) == 1 and "recovered" in recovery[0]  # type: ignore[index]
    assert not DATABASE_OUTAGE.failing


@pytest.mark.postgres
def test_pooled_connections_closed_by_the_database_are_replaced() -> None:
    """A restart closes every pooled connection. One idle for a moment is checked before it
    is handed out and replaced; one in steady use is not checked (no round trip per
    checkout), so the first statement on it fails as a 503, and the pool then replaces all
    its connections made before that failure."""
    from sqlalchemy import text

    from nightwheels.db.engine import PING_AFTER_IDLE_S, Database
    from nightwheels.db.failures import DatabaseUnavailable, database_error

    with fresh_database() as url:
        name = url.rsplit("/", 1)[1]
        db = Database(url, pool_size=3)

        def one() -> int:
            with db.read() as session:
                return session.execute(text("SELECT 1")).scalar_one()

        def restart() -> None:
            _pg_admin(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            )

        try:
            assert one() == 1
            restart()
            time.sleep(PING_AFTER_IDLE_S + 0.1)
            assert one() == 1  # checked, replaced: no error
            restart()
            with pytest.raises(Exception) as failed:  # in steady use: not checked
                one()
            assert isinstance(database_error(failed.value), DatabaseUnavailable)
            assert one() == 1
        finally:
            db.dispose()
