"""Retention through the live server and the real clients: as-of views, prune, quota, CLI."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from nightwheels.config import Settings
from nightwheels.db.engine import Database
from nightwheels.services import stats
from tests.support import clients
from tests.support.server import LiveServer, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def upload(server: LiveServer, token: str, wheel: Path) -> httpx.Response:
    return post_wheel(server, token, wheel)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def listed(url: str) -> dict[str, str]:
    """filename -> sha256 of a simple page."""
    page = httpx.get(url, headers=JSON)
    if page.status_code == 404:
        return {}
    page.raise_for_status()
    return {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}


def backdate(server: LiveServer, days: float, *, filename_like: str = "%") -> None:
    """Pretend files were uploaded ``days`` ago (the index's clock cannot be wound)."""
    with sqlite3.connect(server.data / "nightwheels.db") as db:
        db.execute("PRAGMA busy_timeout=30000")
        rows = db.execute(
            "SELECT id, uploaded_at FROM files WHERE filename LIKE ?", (filename_like,)
        ).fetchall()
        for file_id, uploaded in rows:
            moment = datetime.fromisoformat(uploaded) - timedelta(days=days)
            db.execute(
                "UPDATE files SET uploaded_at = ? WHERE id = ?",
                (moment.strftime("%Y-%m-%d %H:%M:%S.%f"), file_id),
            )
    db = Database(Settings(data=server.data).database)
    try:
        with db.write() as session:
            stats.refresh_all(session)  # rows edited by hand
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server for this module; every test works in a project of its own."""
    live = LiveServer(data=tmp_path_factory.mktemp("retention") / "data")
    live.data.mkdir()
    live.start()
    live.create_user("alice")
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def project(shared: LiveServer, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(name, upload token) of a fresh project named after the test."""
    name = request.node.name.removeprefix("test_").split("[")[0].replace("_", "")[:40]
    return name, shared.token("alice", name)


def test_as_of_views_with_pip_and_uv(
    shared: LiveServer, project: tuple[str, str], tmp_path: Path, uv_cache: Path
) -> None:
    server, (demo, uploader) = shared, project
    first = make_wheel(tmp_path / "a", demo, "1.0.0.dev0", module_source="V = 1\n")
    assert upload(server, uploader, first).status_code == 200
    time.sleep(0.05)
    before_replace = datetime.now(UTC)
    time.sleep(0.05)
    second = make_wheel(tmp_path / "b", demo, "1.0.0.dev0", module_source="V = 2\n")
    assert upload(server, uploader, second).status_code == 200

    now_page = listed(server.simple_url + f"{demo}/")
    past_url = f"{server.url}/as-of/{rfc3339(before_replace)}/simple/"
    past_page = listed(past_url + f"{demo}/")
    assert now_page == {second.name: hashlib.sha256(second.read_bytes()).hexdigest()}
    assert past_page == {first.name: hashlib.sha256(first.read_bytes()).hexdigest()}
    # The index page of the view, and HTML for pip.
    assert demo in httpx.get(past_url).text
    html = httpx.get(past_url + f"{demo}/").text
    assert f'href="../../../../files/{past_page[first.name][:32]}/{first.name}#sha256=' in html

    target = tmp_path / "site"
    clients.pip(
        "install", "--pre", "--no-deps", "--index-url", past_url, "--target", str(target), demo
    )
    assert (target / demo / "__init__.py").read_text() == "V = 1\n"

    venv = tmp_path / "venv"
    clients.uv("venv", "--python", sys.executable, str(venv), cache=uv_cache)
    clients.uv(
        "pip",
        "install",
        "--python",
        str(venv),
        "--prerelease=allow",
        "--index-url",
        past_url,
        demo,
        cache=uv_cache,
    )
    out = clients.run([str(venv / "bin" / "python"), "-c", f"import {demo}; print({demo}.V)"])
    assert out.stdout.strip() == "1"

    # Before the first upload, the project was not listed at all.
    early = rfc3339(before_replace - timedelta(minutes=5))
    assert httpx.get(f"{server.url}/as-of/{early}/simple/{demo}/").status_code == 404
    assert f"{demo}/" not in httpx.get(f"{server.url}/as-of/{early}/simple/").text


@pytest.mark.parametrize(
    ("moment", "status", "message"),
    [
        ("yesterday", 400, "not an RFC 3339 time"),
        ("2026-11-25T12:00:00", 400, "no time zone"),
        ("2999-01-01T00:00:00Z", 400, "in the future"),
        ("2000-01-01T00:00:00+02:00", 404, "reach back 30 days"),
    ],
)
def test_as_of_bad_times(shared: LiveServer, moment: str, status: int, message: str) -> None:
    response = httpx.get(f"{shared.url}/as-of/{moment}/simple/demo/")
    assert response.status_code == status and message in response.text


def test_prune_hides_at_once_downloads_keep_working(
    shared: LiveServer, project: tuple[str, str], tmp_path: Path
) -> None:
    server, (demo, uploader) = shared, project
    wheels = [make_wheel(tmp_path / str(n), demo, f"1.0.dev{n}") for n in range(3)]
    for n, wheel in enumerate(wheels):
        assert upload(server, uploader, wheel).status_code == 200
        backdate(server, 3 - n, filename_like=f"{demo}-%dev{n}-%")
    page = httpx.get(server.simple_url + f"{demo}/", headers=JSON).json()
    urls = {
        f["filename"]: httpx.URL(server.simple_url + f"{demo}/").join(f["url"])
        for f in page["files"]
    }
    before = datetime.now(UTC)

    server.cli("retention", "set", demo, "--keep", "2")
    dry = server.cli("prune", "--dry-run", "--project", demo)
    assert dry.stdout == (
        f"would remove {wheels[0].name}: version 1.0.dev0 is not among the newest 2 "
        "(it is number 3 by upload time)\n"
    )
    assert len(listed(server.simple_url + f"{demo}/")) == 3
    dry_json = json.loads(server.cli("prune", "--dry-run", "--json", "--project", demo).stdout)
    assert (dry_json["would_remove"], dry_json["removed"]) == (1, 0)  # nothing was removed
    done = server.cli("prune", "--project", demo)
    assert done.stdout.startswith(f"removed {wheels[0].name}")
    # Gone from the page at once (the server learns of the change within its poll interval).
    assert wait_for(lambda: wheels[0].name not in listed(server.simple_url + f"{demo}/"), 2)
    # Still downloadable (history window), still in the as-of view of before the prune.
    response = httpx.get(urls[wheels[0].name])
    assert response.status_code == 200 and response.content == wheels[0].read_bytes()
    assert wheels[0].name in listed(f"{server.url}/as-of/{rfc3339(before)}/simple/{demo}/")
    # fsck agrees that everything listed can be served.
    assert server.cli("fsck").returncode == 0
    shown = json.loads(httpx.get(f"{server.url}/api/v1/projects/{demo}/retention").text)
    assert shown["keep"] == 2 and shown["usage"]["history_files"] == 1


def test_prune_refusal_and_abort_exit_codes(
    shared: LiveServer, project: tuple[str, str], tmp_path: Path
) -> None:
    server, (demo, uploader) = shared, project
    for n in range(4):
        upload(server, uploader, make_wheel(tmp_path / str(n), demo, f"1.0.dev{n}"))
        backdate(server, 4 - n, filename_like=f"{demo}-%dev{n}-%")
    server.cli("retention", "set", demo, "--keep", "1")
    refused = server.cli("prune", "--project", demo, check=False)
    assert refused.returncode == 4  # the share guard (issue 19.6: each cause its own status)
    assert f"refused {demo}: would remove 3 of 4 files (75%)" in refused.stderr
    assert "error: 1 project(s) not pruned" in refused.stderr
    assert len(listed(server.simple_url + f"{demo}/")) == 4

    with sqlite3.connect(server.data / "nightwheels.db") as db:
        db.execute(f"UPDATE files SET version = '9.9' WHERE filename LIKE '{demo}-%dev3-%'")
    aborted = server.cli("prune", "--force", "--project", demo, check=False)
    assert aborted.returncode == 5  # the fail-safe
    assert "row says version '9.9'" in aborted.stderr and "nothing was removed" in aborted.stderr
    assert "Traceback" not in aborted.stderr
    as_json = server.cli("prune", "--force", "--json", "--project", demo, check=False)
    assert as_json.returncode == 5
    doc = json.loads(as_json.stdout)
    assert doc["error"] == "prune-aborted" and "nothing was removed" in doc["message"]
    unreachable = subprocess.run(
        [sys.executable, "-m", "nightwheels", "prune", "--json"],
        env={
            **os.environ,
            "NIGHTWHEELS_DATA": str(tmp_path / "nowhere"),
            "NIGHTWHEELS_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unreachable.returncode == 6, unreachable.stderr
    assert json.loads(unreachable.stdout)["error"] == "database-unavailable"
    assert unreachable.stderr.startswith("error: cannot use the database")
    assert "Traceback" not in unreachable.stderr
    with sqlite3.connect(server.data / "nightwheels.db") as db:
        db.execute(f"UPDATE files SET version = '1.0.dev3' WHERE filename LIKE '{demo}-%dev3-%'")
    assert server.cli("prune", "--force", "--project", demo).returncode == 0
    # The server learns of the prune (another process's change) within its poll interval.
    assert wait_for(lambda: len(listed(server.simple_url + f"{demo}/")) == 1, 5)


def test_quota_and_usage(shared: LiveServer, project: tuple[str, str], tmp_path: Path) -> None:
    server, (demo, uploader) = shared, project
    small = make_wheel(tmp_path / "a", demo, "1.0.dev1")
    assert upload(server, uploader, small).status_code == 200
    size = small.stat().st_size
    server.cli("retention", "set", demo, "--quota", str(size + 100))
    big = make_wheel(tmp_path / "b", demo, "1.0.dev2", payload=b"\x01" * 5000)
    response = upload(server, uploader, big)
    assert response.status_code == 413
    assert "over its quota" in response.text
    out = clients.twine_upload(server.upload_url, uploader, big, check=False)
    # twine prints the status line only (the message is in the body, shown by httpx above)
    assert out.returncode != 0 and "413" in out.stdout + out.stderr
    usage = json.loads(server.cli("usage", demo, "--json").stdout)
    assert usage == [
        {
            "project": demo,
            "live_files": 1,
            "live_bytes": size,
            "history_files": 0,
            "history_bytes": 0,
            "quota_bytes": size + 100,
        }
    ]
    assert demo in server.cli("usage").stdout
    bad = server.cli("retention", "set", demo, "--quota", "lots", check=False)
    assert bad.returncode == 1 and "not a size" in bad.stderr
    server.cli("retention", "set", demo, "--quota", "none")
    assert upload(server, uploader, big).status_code == 200


def test_stale_and_pin_commands(
    shared: LiveServer, project: tuple[str, str], tmp_path: Path
) -> None:
    server, (demo, uploader) = shared, project
    for n in range(3):
        upload(server, uploader, make_wheel(tmp_path / str(n), demo, f"1.0.dev{n}"))
    backdate(server, 20, filename_like=f"{demo}-%")
    (line,) = [x for x in server.cli("stale").stdout.splitlines() if x.split()[0] == demo]
    assert "20 days" in line and "warn" in line
    doc = {d["project"]: d for d in json.loads(server.cli("stale", "--json").stdout)}
    assert doc[demo]["level"] == "warn" and doc[demo]["age_days"] == 20
    fresh = {d["project"]: d for d in httpx.get(f"{server.url}/api/v1/freshness").json()}
    assert fresh[demo]["age_days"] == 20 and fresh[demo]["level"] == "warn"

    server.cli("pin", demo, "1.0.dev0")
    server.cli("retention", "set", demo, "--keep", "1")
    out = server.cli("prune", "--force", "--explain", "--project", demo)
    assert f"keep {demo}-1.0.dev0-py3-none-any.whl: pinned" in out.stdout
    assert f"removed {demo}-1.0.dev1-py3-none-any.whl" in out.stdout
    missing = server.cli("pin", "nope", "1.0", check=False)
    assert missing.returncode == 1 and "no project named 'nope'" in missing.stderr


def test_scheduled_prune_in_the_server(tmp_path: Path) -> None:
    with LiveServer(
        data=tmp_path / "data",
        env={
            "NIGHTWHEELS_PRUNE_INTERVAL": "0.3",
            "NIGHTWHEELS_RETENTION_KEEP": "1",
            "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
        },
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheels = [make_wheel(tmp_path / str(n), "demo", f"1.0.dev{n}") for n in range(3)]
        for wheel in wheels:
            assert upload(live, token, wheel).status_code == 200
        assert wait_for(lambda: set(listed(live.simple_url + "demo/")) == {wheels[2].name}, 60)
    audit = sqlite3.connect(live.data / "nightwheels.db").execute(
        "SELECT actor, details FROM audit_events WHERE action = 'files.prune'"
    )
    pruned = sorted((actor, f[0]) for actor, details in audit for f in json.loads(details)["files"])
    assert pruned == [("scheduler", wheels[0].name), ("scheduler", wheels[1].name)]
