"""Atomic nights: upload sessions and ``nightwheels upload --atomic``.

Live server, the real ``nightwheels upload`` processes, twine into a session URL, pip from
a session's preview index, and a reader polling the simple page while a night publishes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support import clients
from tests.support.clients import clean_env
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"
TAGS = (
    "cp312-cp312-manylinux_2_17_x86_64",
    "cp312-cp312-macosx_11_0_arm64",
    "cp312-cp312-win_amd64",
)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server where ``demo`` exists (yesterday's 1.0.dev1); alice's demo token."""
    with LiveServer(data=tmp_path / "data") as server:
        server.create_user("alice", admin=True)
        token = server.token("alice", "demo")
        old = make_wheel(tmp_path / "old", "demo", "1.0.dev1")
        assert post_wheel(server, token, old).status_code == 200
        yield server, token


def listed(server: LiveServer, url: str | None = None) -> set[str]:
    page = httpx.get(url or f"{server.simple_url}demo/", headers={"Accept": JSON}, timeout=10)
    assert page.status_code == 200, page.text
    return {f["filename"] for f in page.json()["files"]}


def upload(
    server: LiveServer, token: str, folder: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightwheels", "upload", str(folder), *args],
        env=clean_env(NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=120,
    )


def open_session(server: LiveServer, token: str, name: str) -> dict[str, str]:
    """Open upload session ``name`` of ``demo`` through the API; its description."""
    opened = httpx.post(
        f"{server.url}/api/v1/projects/demo/sessions",
        json={"name": name},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert opened.status_code == 201, opened.text
    return dict(opened.json())


def session_cli(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightwheels", "session", *args],
        env=clean_env(NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_session_across_three_uploading_processes(
    live: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, token = live
    before = listed(server)
    folders = [tmp_path / f"job{i}" for i in range(3)]
    wheels = [
        make_wheel(folder, "demo", "1.0.dev2", tag)
        for folder, tag in zip(folders, TAGS, strict=True)
    ]
    session = open_session(server, token, "nightly-42")

    # Two CI jobs with nightwheels upload, one with twine to the session's upload URL.
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "nightwheels", "upload", str(folder), "--session", "nightly-42"],
            env=clean_env(NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders[:2]
    ]
    clients.twine_upload(session["upload_url"], token, wheels[2])
    for job in jobs:
        out, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
        assert "listed once published" in out
        assert "nightwheels session publish nightly-42 --project demo" in out

    assert listed(server) == before  # nothing visible yet
    preview = f"{session['preview_url']}demo/"
    assert listed(server, preview) == before | {w.name for w in wheels}
    # pip installs tonight's set from the preview (the files are served from the session).
    target = tmp_path / "site"
    clients.pip(
        "install", "--no-deps", "--pre", "--index-url", session["preview_url"],
        "--target", str(target), "--platform", "manylinux_2_17_x86_64", "--implementation", "cp", "--abi", "cp312",
        "--python-version", "3.12", "--only-binary=:all:", "demo==1.0.dev2",
    )  # fmt: skip
    assert "1.0.dev2" in (target / "demo" / "__init__.py").read_text()

    published = session_cli(server, token, "publish", "nightly-42", "--project", "demo")
    assert published.returncode == 0, published.stderr
    assert "published 3 files" in published.stdout
    assert listed(server) == before | {w.name for w in wheels}
    assert httpx.get(preview).status_code == 404  # the preview ends with the session

    again = session_cli(server, token, "publish", "nightly-42", "--project", "demo")
    assert again.returncode == 1
    assert again.stderr.strip().count("\n") == 0
    assert "no open upload session 'nightly-42'" in again.stderr


def test_an_atomic_upload_is_never_half_visible(
    live: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, token = live
    before = listed(server)
    folder = tmp_path / "night"
    wheels = {
        make_wheel(folder, "demo", "1.0.dev3", f"cp3{minor}-cp3{minor}-{platform}").name
        for minor in (11, 12, 13)
        for platform in ("manylinux_2_17_x86_64", "win_amd64")
    }
    seen: list[frozenset[str]] = []
    done = threading.Event()

    def read() -> None:
        with httpx.Client() as reader:
            while not done.is_set():
                page = reader.get(f"{server.simple_url}demo/", headers={"Accept": JSON})
                seen.append(frozenset(f["filename"] for f in page.json()["files"]))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        # One file per request: six requests, so a non-atomic upload would show in between.
        result = upload(server, token, folder, "--atomic", "--batch", "1", "--jobs", "1")
    finally:
        done.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert "install with:" in result.stdout
    after = before | wheels
    assert listed(server) == after
    assert set(seen) <= {frozenset(before), frozenset(after)}, "a reader saw half a night"
    assert frozenset(before) in seen


def test_an_atomic_upload_with_a_refused_file_publishes_nothing(tmp_path: Path) -> None:
    with LiveServer(data=tmp_path / "data", env={"NIGHTWHEELS_ALLOW_REPLACE": "false"}) as server:
        server.create_user("alice", admin=True)
        token = server.token("alice", "demo")
        taken = make_wheel(tmp_path / "old", "demo", "1.0.dev4", TAGS[0])
        assert post_wheel(server, token, taken).status_code == 200
        before = listed(server)
        folder = tmp_path / "night"
        make_wheel(folder, "demo", "1.0.dev4", TAGS[1])
        make_wheel(folder, "demo", "1.0.dev4", TAGS[0], payload=b"other bytes")  # exists

        result = upload(server, token, folder, "--atomic")

        assert result.returncode == 1
        assert "refused (HTTP 409)" in result.stderr
        assert "nothing was published (--atomic)" in result.stderr
        assert listed(server) == before


def test_who_may_use_a_session(live: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, token = live
    server.create_user("mallory", admin=False)
    outsider = server.token("mallory", "other")
    opened = open_session(server, token, "nightly-7")
    wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev5")
    assert clients.twine_upload(opened["upload_url"], token, wheel).returncode == 0
    bearer = {"Authorization": f"Bearer {outsider}"}

    assert (
        httpx.post(
            f"{server.url}/api/v1/projects/demo/sessions", json={"name": "x"}, headers=bearer
        ).status_code
        == 403
    )
    assert (
        httpx.get(f"{server.url}/api/v1/sessions/{opened['id']}", headers=bearer).status_code == 403
    )
    assert (
        httpx.post(
            f"{server.url}/api/v1/sessions/{opened['id']}/publish", headers=bearer
        ).status_code
        == 403
    )
    assert (
        httpx.delete(f"{server.url}/api/v1/sessions/{opened['id']}", headers=bearer).status_code
        == 403
    )
    assert httpx.post(f"{server.url}/api/v1/sessions/{opened['id']}/publish").status_code == 401
    refused = clients.twine_upload(opened["upload_url"], outsider, wheel, check=False)
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr
    # Cancelled: its files are never listed, and it takes no more uploads.
    assert (
        httpx.delete(
            f"{server.url}/api/v1/sessions/{opened['id']}",
            headers={"Authorization": f"Bearer {token}"},
        ).status_code
        == 200
    )
    late = clients.twine_upload(
        opened["upload_url"], token, make_wheel(tmp_path / "x", "demo", "1.0.dev6"), check=False
    )
    # twine prints the status line's reason (the message, where the server puts it there)
    assert late.returncode != 0
    assert any(word in late.stdout + late.stderr for word in ("cancelled", "Conflict"))
    assert "demo-1.0.dev5-py3-none-any.whl" not in listed(server)


def test_an_expired_session_leaves_nothing_behind(tmp_path: Path) -> None:
    """In-process: a session never published expires; its rows go, and gc its blobs."""
    from nightwheels.config import Settings
    from nightwheels.db.migrate import upgrade
    from nightwheels.db.models import PendingFile, UploadSession, utcnow
    from nightwheels.services import accounts, gc, upload_sessions
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.auth import authenticate_token
    from nightwheels.services.context import Services
    from nightwheels.services.publish import UploadRequest, publish, publish_many
    from nightwheels.storage.staging import write_bytes_staged

    settings = Settings(data=tmp_path / "data", gc_grace_hours=0)
    services = Services.from_settings(settings)
    upgrade(settings.database)
    try:
        with services.db.write() as session:
            alice = accounts.create_user(session, SYSTEM, "alice", is_admin=True)
            secret = accounts.create_token_as_admin(
                session, SYSTEM, alice, name="t", projects=["demo"], permission="upload"
            ).secret
        principal = authenticate_token(services.db, secret, None)

        def staged(path: Path) -> tuple[UploadRequest, object]:
            data = path.read_bytes()
            import hashlib

            request = UploadRequest(
                path.name,
                "demo",
                path.name.split("-")[1],
                sha256_digest=hashlib.sha256(data).hexdigest(),
            )
            return request, write_bytes_staged(settings.tmp_dir, data)

        publish(services, principal, *staged(make_wheel(tmp_path / "a", "demo", "1.0")))  # type: ignore[arg-type]
        info, created = upload_sessions.open_session(services, principal, "demo", "nightly-1")
        assert created
        night = make_wheel(tmp_path / "b", "demo", "2.0.dev1", payload=b"tonight")
        (answer,) = publish_many(services, principal, [staged(night)], upload_session=info.id)  # type: ignore[list-item]
        assert not isinstance(answer, Exception), answer
        blobs_with_session = set(services.store.iter_keys())

        assert upload_sessions.expire_sessions(services, now=utcnow() + timedelta(hours=25)) == [
            "demo/nightly-1"
        ]
        gc.collect(services, SYSTEM)

        with services.db.read() as session:
            assert session.query(PendingFile).count() == 0
            assert session.query(UploadSession).one().state == "expired"
        left = set(services.store.iter_keys())
        assert len(blobs_with_session - left) == 2  # the wheel and its metadata
    finally:
        services.close()


def test_session_show_and_cancel_commands(live: tuple[LiveServer, str]) -> None:
    """`nightwheels session show|cancel NAME --project P`: the parameters every session
    command shares, in process (publish is run as a process above)."""
    from tests.support.cli import nightwheels

    server, token = live
    opened = open_session(server, token, "nightly-7")
    env = {"NIGHTWHEELS_TOKEN": token}
    args = ("nightly-7", "-p", "demo", "--server", server.url)
    shown = nightwheels("session", "show", *args, **env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        "session 'nightly-7' of demo (label main): open, 0 files",
        f"preview: {opened['preview_url']}",
    ]
    cancelled = nightwheels("session", "cancel", *args, **env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert (
        cancelled.stdout.strip() == "session 'nightly-7' of demo (label main): cancelled, 0 files"
    )
    gone = nightwheels("session", "show", *args, **env)
    assert gone.returncode == 1 and "no open upload session 'nightly-7'" in gone.stderr
    no_project = nightwheels("session", "cancel", "nightly-7", "--server", server.url, **env)
    assert no_project.returncode == 2 and "--project" in no_project.stderr


def test_a_quarantined_projects_open_session_offers_no_file(
    live: tuple[LiveServer, str], tmp_path: Path
) -> None:
    """PEP 792: a session opened before the quarantine previews no file of it either: its
    preview page lists none and its file URLs are refused (403, as /files/ URLs are)."""
    from tests.support.access import Accounts, Api
    from tests.support.cli import nightwheels

    server, token = live
    opened = open_session(server, token, "nightly-9")
    folder = tmp_path / "job"
    make_wheel(folder, "demo", "1.0.dev9")
    env = {"NIGHTWHEELS_TOKEN": token, "NIGHTWHEELS_SERVER": server.url}
    sent = nightwheels("upload", str(folder), "--session", "nightly-9", **env)
    assert sent.returncode == 0, sent.stderr
    preview = f"{opened['preview_url']}demo/"
    page = httpx.get(preview, headers={"Accept": JSON}).json()
    (entry,) = [f for f in page["files"] if "1.0.dev9" in f["filename"]]
    url = str(httpx.URL(preview).join(entry["url"]))
    assert httpx.get(url).status_code == 200

    accounts = Accounts(server.data)
    try:
        admin = Api(server, accounts.token("alice", "demo"))
    finally:
        accounts.close()
    answer = admin.put("/projects/demo/status", {"status": "quarantined", "reason": "malware"})
    assert answer.status_code == 200, answer.text
    assert httpx.get(preview, headers={"Accept": JSON}).json()["files"] == []
    for refused in (httpx.get(url), httpx.get(url + ".metadata")):
        assert refused.status_code == 403
        assert refused.text.strip() == (
            "project 'demo' is quarantined (malware): its files are not offered for download"
        )
