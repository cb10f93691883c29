"""``nightwheels migrate-storage``: embedded default <-> PostgreSQL + S3, nothing lost."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from nightwheels.db.models import Base
from nightwheels.storage.base import blob_key
from tests.support import clients
from tests.support.backends import Backend
from tests.support.consistency import index_problems
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

pytestmark = pytest.mark.postgres
JSON = "application/vnd.pypi.simple.v1+json"


def upload(live: LiveServer, token: str, wheel: Path, version: str, label: str = "main") -> None:
    response = post_wheel(live, token, wheel, version=version, label=label)
    assert response.status_code == 200, response.text


def pages(live: LiveServer) -> dict[str, bytes]:
    got = {}
    for path in ("/simple/", "/simple/demo/", "/simple/other/", "/label/rc/simple/demo/"):
        for accept in (JSON, "text/html"):
            response = httpx.get(live.url + path, headers={"Accept": accept})
            assert response.status_code == 200, path
            got[f"{path} {accept}"] = response.content
    return got


def row_counts(backend: Backend, data: Path) -> dict[str, int]:
    services = backend.services(data)
    try:
        with services.db.read() as session:
            return {
                t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables
            }
    finally:
        services.close()


def migrate(live: LiveServer, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
    return live.cli("migrate-storage", *args, check=check)


def test_there_and_back_again(tmp_path: Path, scaled: Backend) -> None:
    assert scaled.s3 is not None
    # An embedded index with history: a replaced file, a yanked one, a label, two projects.
    with LiveServer(data=tmp_path / "embedded") as embedded:
        embedded.create_user("alice")
        token = embedded.token("alice", "demo", "other")
        upload(
            embedded,
            token,
            make_wheel(tmp_path / "1", "demo", "1.0.dev0", module_source="A = 1\n"),
            "1.0.dev0",
        )
        upload(
            embedded,
            token,
            make_wheel(tmp_path / "2", "demo", "1.0.dev0", module_source="A = 2\n"),
            "1.0.dev0",
        )
        upload(embedded, token, make_wheel(tmp_path / "3", "demo", "0.9"), "0.9")
        upload(embedded, token, make_wheel(tmp_path / "4", "demo", "1.1rc1"), "1.1rc1", label="rc")
        upload(embedded, token, make_wheel(tmp_path / "5", "other", "2.0"), "2.0")
        embedded.cli("yank", "demo", "0.9", "--reason", "old")
        before = pages(embedded)
    source_counts = row_counts(embedded.backend, embedded.data)
    source_blobs = {p.name for p in embedded.blobs()}
    # Five wheels, five metadata files, two of them identical (same name and version).
    assert source_counts["files"] == 5 and len(source_blobs) == 9

    # Embedded -> PostgreSQL + S3 (the AWS settings come from the environment).
    embedded.env.update(scaled.s3.env)
    out = migrate(embedded, "--to-database", scaled.database_url, "--to-storage", scaled.storage)  # type: ignore[arg-type]
    assert "9 files copied" in out.stdout and "all digests verified" in out.stdout
    assert "5 files," in out.stdout

    with LiveServer(data=tmp_path / "scaled", backend=scaled) as scaled_server:
        assert pages(scaled_server) == before  # same pages, byte for byte: same ETags
        assert row_counts(scaled, scaled_server.data) == source_counts
        assert {p.name for p in scaled_server.blobs()} == source_blobs
        services = scaled.services(scaled_server.data)
        try:
            assert index_problems(services) == []
        finally:
            services.close()
        # The old token works and new rows get fresh ids (sequences follow the copied ids).
        upload(
            scaled_server,
            token,
            make_wheel(tmp_path / "6", "demo", "1.0.dev1", module_source="A = 3\n"),
            "1.0.dev1",
        )
        target = tmp_path / "site"
        clients.pip(
            "install", "--pre", "--no-deps", "--index-url", scaled_server.simple_url,
            "--target", str(target), "demo",
        )  # fmt: skip
        assert (target / "demo" / "__init__.py").read_text() == "A = 3\n"
        after_upload = pages(scaled_server)
        scaled_counts = row_counts(scaled, scaled_server.data)

    # PostgreSQL + S3 -> a new embedded index.
    back = tmp_path / "back"
    out = migrate(scaled_server, "--to-data", str(back))
    assert "11 files copied" in out.stdout
    returned = LiveServer(data=back)
    returned.start()
    try:
        assert pages(returned) == after_upload
        assert row_counts(returned.backend, back) == scaled_counts
        services = returned.backend.services(back)
        try:
            assert index_problems(services) == []
        finally:
            services.close()
    finally:
        returned.stop()

    # Into a database that already holds an index: refused, nothing touched.
    again = migrate(scaled_server, "--to-data", str(back), check=False)
    assert again.returncode == 1
    assert "error: the target database already holds an index" in again.stderr
    assert row_counts(returned.backend, back) == scaled_counts


def test_damaged_bytes_stop_the_migration(tmp_path: Path, scaled: Backend) -> None:
    assert scaled.s3 is not None
    with LiveServer(data=tmp_path / "embedded", env=dict(scaled.s3.env)) as embedded:
        embedded.create_user("alice")
        token = embedded.token("alice", "demo")
        wheel = make_wheel(tmp_path / "w", "demo", "1.0")
        upload(embedded, token, wheel, "1.0")
    key = blob_key(hashlib.sha256(wheel.read_bytes()).hexdigest())
    (embedded.data / "files" / key).write_bytes(b"bit rot")

    out = migrate(
        embedded, "--to-database", scaled.database_url, "--to-storage", scaled.storage, check=False
    )  # type: ignore[arg-type]
    assert out.returncode == 1
    last = out.stderr.splitlines()[-1]
    assert last.startswith(f"error: the source's bytes for {key} do not match their digest")
    assert "Traceback" not in out.stderr
    counts = row_counts(scaled, tmp_path / "x")
    assert all(n == 0 for name, n in counts.items() if name != "index_state")

    # A missing blob that a row names: refused as well.
    (embedded.data / "files" / key).unlink()
    out = migrate(
        embedded, "--to-database", scaled.database_url, "--to-storage", scaled.storage, check=False
    )  # type: ignore[arg-type]
    assert out.returncode == 1
    assert f"no bytes for {key}" in out.stderr
    counts = row_counts(scaled, tmp_path / "x")
    assert all(n == 0 for name, n in counts.items() if name != "index_state")

    bad = migrate(embedded, check=False)
    assert bad.returncode == 1 and "name the target" in bad.stderr
    same = migrate(embedded, "--to-data", str(embedded.data), check=False)
    assert same.returncode == 1 and "is the source database" in same.stderr


def test_a_repaired_index_migrates_and_a_failed_run_leaves_the_bucket_as_it_was(
    tmp_path: Path, scaled: Backend
) -> None:
    """Issue 19 item 2: a file fsck unlisted (lost bytes, quarantined bytes) does not block
    the migration, which says what it skipped; a refused run removes the objects it wrote."""
    from nightwheels.db.migrate import upgrade
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.fsck import fsck
    from nightwheels.services.migrate import CorruptBlob, migrate_index
    from tests.support.seed import add_file, open_services

    source = open_services(tmp_path / "source")
    assert scaled.database_url is not None
    upgrade(scaled.database_url)
    target = scaled.services(tmp_path / "target")
    try:
        kept = [add_file(source, "demo", f"1.0.dev{i}") for i in range(3)]
        lost = add_file(source, "demo", "0.9.dev1")
        rotten = add_file(source, "demo", "0.9.dev2")
        files = tmp_path / "source" / "files"
        (files / blob_key(lost.sha256)).unlink()
        (files / blob_key(rotten.sha256)).write_bytes(b"bit rot")
        before = scaled.blobs(tmp_path)
        assert before == []

        # Not repaired yet: a listed file without bytes refuses the migration, and the
        # objects the run wrote before it met that file are gone again.
        with pytest.raises(CorruptBlob, match="fsck --repair"):
            migrate_index(source, target, jobs=2)
        assert scaled.blobs(tmp_path) == before
        assert row_counts(scaled, tmp_path / "x")["files"] == 0

        report = fsck(source, SYSTEM, repair=True)
        assert not fsck(source, SYSTEM).problems
        assert report.findings  # lost and quarantined
        result = migrate_index(source, target, jobs=2)
        assert sorted(result.skipped.items()) == sorted(
            [(blob_key(lost.sha256), "missing"), (blob_key(rotten.sha256), "missing")]
        )
        assert result.rows["files"] == 5
        keys = {str(k).split("/", 1)[1] for k in scaled.blobs(tmp_path)}
        for f in kept:
            assert blob_key(f.sha256) in keys and blob_key(f.metadata_sha256) in keys
        assert blob_key(lost.sha256) not in keys
    finally:
        source.close()
        target.close()
