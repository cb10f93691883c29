"""Reliability: prune under concurrent uploads and downloads; SIGKILL mid-upload, mid-prune."""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.seed import bulk_seed, open_services
from tests.support.server import LiveServer, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


def _form(wheel: Path) -> dict[str, str]:
    name, version = wheel.name.split("-")[:2]
    return {
        ":action": "file_upload",
        "name": name,
        "version": version,
        "sha256_digest": hashlib.sha256(wheel.read_bytes()).hexdigest(),
    }


def upload(server: LiveServer, token: str, wheel: Path) -> httpx.Response:
    return post_wheel(server, token, wheel, timeout=120)


def fsck(server: LiveServer, *args: str) -> dict:  # type: ignore[type-arg]
    out = server.cli("fsck", "--json", *args, check=False)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_prune_during_uploads_and_downloads(tmp_path: Path) -> None:
    with LiveServer(
        data=tmp_path / "data",
        env={
            "NIGHTWHEELS_PRUNE_INTERVAL": "0.2",  # the server prunes all the time
            "NIGHTWHEELS_RETENTION_KEEP": "2",
            "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
        },
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheels = [
            make_wheel(tmp_path / str(n), "demo", f"1.0.dev{n}", payload=bytes([n]) * 200_000)
            for n in range(20)
        ]
        by_name = {w.name: w.read_bytes() for w in wheels}
        stop = threading.Event()
        statuses: list[tuple[str, int]] = []
        failures: list[str] = []
        downloads = 0

        def uploader() -> None:
            for wheel in wheels:
                time.sleep(0.4)  # a nightly upload now and then, while prunes run
                r = upload(live, token, wheel)
                statuses.append(("upload", r.status_code))
                if r.status_code != 200:
                    failures.append(f"upload {wheel.name}: {r.status_code} {r.text}")
            stop.set()

        def downloader() -> None:
            nonlocal downloads
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    page = client.get(live.simple_url + "demo/", headers=JSON)
                    statuses.append(("page", page.status_code))
                    if page.status_code == 404:
                        continue
                    if page.status_code != 200:
                        failures.append(f"page: {page.status_code}")
                        continue
                    base = httpx.URL(live.simple_url + "demo/")
                    for f in page.json()["files"]:
                        r = client.get(base.join(f["url"]))
                        statuses.append(("download", r.status_code))
                        downloads += 1
                        if r.status_code != 200 or r.content != by_name[f["filename"]]:
                            failures.append(f"download {f['filename']}: {r.status_code}")

        def cli_pruner() -> None:  # and a second pruner in another process
            while not stop.is_set():
                out = live.cli("prune", "--force", check=False)
                if out.returncode != 0:
                    failures.append(f"cli prune: {out.stderr}")

        threads = [
            threading.Thread(target=f) for f in (uploader, downloader, downloader, cli_pruner)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        assert not failures, failures[:5]
        assert not [s for s in statuses if s[1] >= 500]
        assert downloads > 20
        # Every upload is recorded: listed, or pruned with a reason; the newest two are listed.
        assert wait_for(
            lambda: (
                set(
                    f["filename"]
                    for f in httpx.get(live.simple_url + "demo/", headers=JSON).json()["files"]
                )
                == {wheels[-1].name, wheels[-2].name}
            ),
            10,
        )
        db = sqlite3.connect(live.data / "nightwheels.db")
        recorded = dict(db.execute("SELECT filename, removed_reason FROM files").fetchall())
        # The prunes really overlapped the uploads.
        (overlapping,) = db.execute(
            "SELECT COUNT(*) FROM audit_events WHERE action = 'files.prune' "
            "AND at < (SELECT MAX(uploaded_at) FROM files)"
        ).fetchone()
        assert overlapping >= 2
        assert set(recorded) == set(by_name)
        assert {r for n, r in recorded.items() if n not in (wheels[-1].name, wheels[-2].name)} == {
            "pruned"
        }
    assert fsck(live)["unservable"] == 0


def _slow_body(wheel: Path, form: dict[str, str], started: threading.Event) -> Iterator[bytes]:
    """A multipart body that sends half the file, then stalls (the server is killed)."""
    boundary = "nightwheels-test-boundary"
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
        for k, v in form.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
        f'filename="{wheel.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    )
    data = wheel.read_bytes()
    yield head.encode()
    yield data[: len(data) // 2]
    started.set()
    time.sleep(30)
    yield data[len(data) // 2 :]


def test_sigkill_mid_upload_then_fsck(tmp_path: Path) -> None:
    live = LiveServer(data=tmp_path / "data", in_thread=False)  # it is killed
    live.data.mkdir()
    live.start()
    live.create_user("alice")
    token = live.token("alice", "demo")
    first = make_wheel(tmp_path / "a", "demo", "1.0.dev1")
    assert upload(live, token, first).status_code == 200
    big = make_wheel(tmp_path / "b", "demo", "1.0.dev2", payload=bytes(range(256)) * 8000)
    started = threading.Event()
    errors: list[Exception] = []

    def stalled() -> None:
        try:
            httpx.post(
                live.upload_url,
                auth=("__token__", token),
                content=_slow_body(big, _form(big), started),
                headers={"Content-Type": "multipart/form-data; boundary=nightwheels-test-boundary"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            errors.append(exc)

    # Also a burst of complete uploads, killed at whatever stage each one is in.
    burst = [
        make_wheel(tmp_path / f"c{n}", "demo", f"1.0.dev{10 + n}", payload=bytes([n]) * 300_000)
        for n in range(6)
    ]
    threads = [threading.Thread(target=stalled, daemon=True)]
    threads += [
        threading.Thread(target=lambda w=w: _swallow(lambda: upload(live, token, w)), daemon=True)
        for w in burst
    ]
    for t in threads:
        t.start()
    assert started.wait(30)
    assert wait_for(lambda: any(p.suffix == ".part" for p in live.tmp_files()), 10)
    live.stop(signal.SIGKILL)
    assert live.process is not None and live.process.returncode == -signal.SIGKILL

    report = fsck(live)
    assert report["unservable"] == 0, report
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds & {"in-progress", "temp-file"}  # the staged half upload is found
    assert kinds <= {"in-progress", "temp-file", "orphan-blob", "recent-orphan"}

    live.start()
    try:
        page = httpx.get(live.simple_url + "demo/", headers=JSON).json()
        base = httpx.URL(live.simple_url + "demo/")
        for f in page["files"]:  # everything listed after the crash can be downloaded
            assert httpx.get(base.join(f["url"])).status_code == 200
        assert big.name not in {f["filename"] for f in page["files"]}
        assert upload(live, token, big).status_code == 200
    finally:
        live.stop()
    repaired = fsck(live, "--repair", "--tmp-age", "0s")
    assert repaired["unservable"] == 0
    assert live.tmp_files() == []
    # What remains: bytes of killed uploads, kept for the grace period (gc deletes them later).
    assert {f["kind"] for f in fsck(live)["findings"]} <= {"recent-orphan"}
    assert live.cli("fsck").returncode == 0


def _swallow(fn) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(httpx.HTTPError):
        fn()


def test_sigkill_mid_prune_then_fsck(tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = open_services(data)
    projects, versions = 300, 20
    bulk_seed(services, projects=projects, versions=versions)  # 12,000 files
    services.close()
    live = LiveServer(
        data=data,
        in_thread=False,  # it is killed
        env={
            "NIGHTWHEELS_PRUNE_INTERVAL": "0.5",
            "NIGHTWHEELS_RETENTION_KEEP": "5",
            "NIGHTWHEELS_PRUNE_MAX_SHARE": "1",
        },
    )
    live.start()
    db = sqlite3.connect(data / "nightwheels.db")

    def pruned_projects() -> int:
        return db.execute(
            "SELECT COUNT(DISTINCT project) FROM audit_events WHERE action = 'files.prune'"
        ).fetchone()[0]

    try:
        assert wait_for(lambda: pruned_projects() > 0, 60, interval=0.01)
    finally:
        live.stop(signal.SIGKILL)
    done = pruned_projects()
    assert 0 < done < projects, "the kill should land in the middle of the prune"
    time.sleep(1.5)  # the maintenance child died with the server: nothing moves any more
    assert pruned_projects() == done
    # Projects are pruned whole or not at all (one transaction each).
    per_project = db.execute(
        "SELECT project_id, SUM(removed_at IS NULL) FROM files GROUP BY project_id"
    ).fetchall()
    assert {live_count for _, live_count in per_project} <= {versions * 2, 5 * 2}
    assert sum(1 for _, c in per_project if c == 10) == done
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    assert fsck(live)["unservable"] == 0
    # After a restart, the next run finishes the job.
    live.cli("prune")
    assert {
        c for (c,) in db.execute("SELECT SUM(removed_at IS NULL) FROM files GROUP BY project_id")
    } == {10}
    report = fsck(live)
    assert report["unservable"] == 0 and report["findings"] == []
