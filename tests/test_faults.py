"""Faults: the server killed mid-upload and mid-replace, a full disk, a busy SQLite database.

After each fault: nothing half-written is listed, every listed file is served with its
recorded digest, staging leftovers are found (and removed by the repair), and the index
keeps working.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support import consistency
from tests.support.backends import Backend
from tests.support.server import LiveServer, wait_for
from tests.support.wheels import make_wheel

BOUNDARY = "faultboundary"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def multipart_parts(wheel: Path, version: str) -> tuple[bytes, bytes, bytes]:
    """(head, file bytes, tail) of a legacy upload body for ``wheel``."""
    content = wheel.read_bytes()
    fields = {
        ":action": "file_upload",
        "name": "demo",
        "version": version,
        "sha256_digest": hashlib.sha256(content).hexdigest(),
    }
    head = b"".join(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    head += (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\n\r\n'
    ).encode()
    return head, content, f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.fixture
def backend() -> Backend:
    """These faults are about the embedded default's own files (staging, a blob folder, the
    SQLite lock), which the independent check in tests/support/consistency.py reads directly;
    the PostgreSQL + S3 races are covered in tests/test_scale_out.py."""
    return Backend("sqlite")


def upload(server: LiveServer, token: str, wheel: Path, version: str) -> httpx.Response:
    head, content, tail = multipart_parts(wheel, version)
    return httpx.post(
        server.upload_url,
        content=head + content + tail,
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        auth=("__token__", token),
        timeout=60,
    )


def listed(server: LiveServer) -> dict[str, str]:
    """filename -> sha256 as the simple API shows them."""
    page = httpx.get(f"{server.simple_url}demo/", headers=JSON, timeout=10)
    if page.status_code == 404:
        return {}
    assert page.status_code == 200, page.text
    return {f["filename"]: f["hashes"]["sha256"] for f in page.json()["files"]}


def fsck_after_restart(server: LiveServer) -> consistency.Consistency:
    """The independent check, then the product's repair if it has one (retention branch)."""
    state = consistency.check(server.data)
    assert state.served_correctly, state
    fsck = server.cli("fsck", "--repair", "--tmp-age", "0s", check=False)
    if "No such command" not in fsck.stderr:
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        assert server.cli("fsck", check=False).returncode == 0
        assert consistency.check(server.data).tmp == []
    return state


def assert_downloadable(server: LiveServer, files: dict[str, str]) -> None:
    for filename, sha256 in files.items():
        page = httpx.get(f"{server.simple_url}demo/", headers=JSON, timeout=10).json()
        url = next(f["url"] for f in page["files"] if f["filename"] == filename)
        got = httpx.get(httpx.URL(f"{server.simple_url}demo/").join(url), timeout=30)
        assert got.status_code == 200
        assert hashlib.sha256(got.content).hexdigest() == sha256


# -- SIGKILL ----------------------------------------------------------------------------


@pytest.mark.server_process
def test_sigkill_during_a_streaming_upload(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0.dev1", payload=os.urandom(4 * 1024 * 1024))
    head, content, tail = multipart_parts(wheel, "1.0.dev1")
    sent_half = threading.Event()
    outcome: list[object] = []

    def slow_body() -> Iterator[bytes]:
        yield head
        for i in range(0, len(content), 64 * 1024):
            yield content[i : i + 64 * 1024]
            if i >= len(content) // 2:
                sent_half.set()
                time.sleep(0.05)
        yield tail

    def client() -> None:
        try:
            outcome.append(
                httpx.post(
                    server.upload_url,
                    content=slow_body(),
                    headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
                    auth=("__token__", uploader),
                    timeout=60,
                )
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert sent_half.wait(30)
    assert wait_for(lambda: server.tmp_files() != [], timeout=10), "the upload is not staging"
    server.stop(signal.SIGKILL)
    thread.join(30)
    assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome

    server.start()
    assert listed(server) == {}
    state = fsck_after_restart(server)
    assert state.listed == []
    assert len(state.tmp) == 1, "the killed upload's staging file should be found"
    # The index still takes the same upload, whole.
    response = upload(server, uploader, wheel, "1.0.dev1")
    assert response.status_code == 200, response.text
    assert_downloadable(server, listed(server))


@pytest.mark.server_process
def test_sigkill_during_replaces(server: LiveServer, uploader: str, tmp_path: Path) -> None:
    """Kill at several moments in a stream of replaces: one whole version is listed."""
    wheels = [
        make_wheel(tmp_path / str(i), "demo", "1.0.dev1", payload=os.urandom(256 * 1024))
        for i in range(4)
    ]
    digests = {hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
    assert upload(server, uploader, wheels[0], "1.0.dev1").status_code == 200
    for delay in (0.15, 0.4, 0.8):
        stop = threading.Event()

        def replace_forever(stop: threading.Event = stop) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    upload(server, uploader, wheels[i % len(wheels)], "1.0.dev1")
                except httpx.HTTPError:
                    return

        threads = [threading.Thread(target=replace_forever) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(delay)
        server.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(30)
        server.start()
        files = listed(server)
        assert list(files) == ["demo-1.0.dev1-py3-none-any.whl"], files
        assert set(files.values()) <= digests
        fsck_after_restart(server)
        assert_downloadable(server, files)


# -- disk full --------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs() -> Iterator[callable]:  # type: ignore[valid-type]
    mounted: list[Path] = []

    def mount(directory: Path, size: str = "2m") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(directory)

    yield mount
    for directory in reversed(mounted):
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.mark.parametrize("full", ["tmp", "files"])
def test_disk_full_is_a_clear_507(tmp_path: Path, small_tmpfs, full: str) -> None:  # type: ignore[no-untyped-def]
    server = LiveServer(data=tmp_path / "data")
    server.data.mkdir()
    small_tmpfs(server.data / full)
    server.start()
    try:
        server.create_user("alice")
        token = server.token("alice", "demo")
        small = make_wheel(tmp_path / "small", "demo", "1.0.dev1")
        big = make_wheel(tmp_path / "big", "demo", "1.0.dev2", payload=os.urandom(3 * 1024 * 1024))
        response = upload(server, token, big, "1.0.dev2")
        assert response.status_code == 507, response.text
        assert "storage is full" in response.text
        assert listed(server) == {}
        state = consistency.check(server.data)
        # No staging file, no partial copy; the metadata blob stored just before the wheel
        # failed may stay as an unreferenced orphan (gc's work), never listed.
        assert state.tmp == [] and state.partials == [], state
        # Space for a small file is still there: the index keeps working.
        assert upload(server, token, small, "1.0.dev1").status_code == 200
        assert_downloadable(server, listed(server))
    finally:
        server.stop()


# -- SQLite busy ------------------------------------------------------------------------


def test_concurrent_writers_never_see_a_500(tmp_path: Path) -> None:
    """Two server processes and the CLI write at once: every write succeeds, no 5xx."""
    server = LiveServer(data=tmp_path / "data")
    server.data.mkdir()
    server.start("--workers", "2")
    try:
        server.create_user("alice")
        token = server.token("alice", "demo")
        wheels = [make_wheel(tmp_path / "w", "demo", f"1.0.dev{i}") for i in range(32)]

        def cli_writes(n: int) -> list[int]:
            codes = []
            for j in range(2):
                # processes of their own: the CLI as a third writer beside the two workers
                user = server.cli("user", "create", f"u{n}x{j}", check=False, real=True)
                token = server.cli(
                    "token",
                    "create",
                    "--user",
                    "alice",
                    "--project",
                    "demo",
                    check=False,
                    real=True,
                )
                codes += [user.returncode, token.returncode]
            return codes

        with ThreadPoolExecutor(16) as pool:
            cli = [pool.submit(cli_writes, n) for n in range(2)]
            uploads = list(
                pool.map(lambda w: upload(server, token, w, w.name.split("-")[1]), wheels)
            )
            cli_codes = [c for f in cli for c in f.result()]
        statuses = [r.status_code for r in uploads]
        assert statuses == [200] * len(wheels), [r.text for r in uploads if r.status_code != 200]
        assert cli_codes == [0] * len(cli_codes)
        assert len(listed(server)) == len(wheels)
        log = (server.data.parent / f"server-{server.port}.log").read_text()
        assert "locked" not in log and "Traceback" not in log, log[-2000:]
    finally:
        server.stop()
