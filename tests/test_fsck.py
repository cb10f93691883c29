"""fsck: every kind of inconsistency is found, and only safe repairs are made."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from nightwheels.core.dists import read_wheel_metadata
from nightwheels.db.models import File
from nightwheels.services.audit import SYSTEM
from nightwheels.services.context import Services
from nightwheels.services.fsck import fsck
from nightwheels.storage.base import blob_key
from tests.support.seed import add_file, live_filenames, open_services, put_blob
from tests.support.wheels import make_wheel


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = open_services(tmp_path / "data", gc_grace_hours=1)
    yield s
    s.close()


def _blob_path(services: Services, digest: str) -> Path:
    path = services.store.local_path(blob_key(digest))
    assert path is not None
    return path


def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def kinds(report) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    return sorted((f.kind, f.repaired is not None) for f in report.findings)


def test_clean_index_has_no_findings(services: Services) -> None:
    add_file(services, "demo", "1.0")
    add_file(services, "demo", "0.9", removed_days_ago=1, removed_reason="pruned")
    report = fsck(services, SYSTEM)
    assert report.findings == [] and report.rows == 2 and report.verified == 4


def test_missing_blob_of_a_listed_file_is_unlisted_on_repair(services: Services) -> None:
    gone = add_file(services, "demo", "1.0.dev2")
    ok = add_file(services, "demo", "1.0.dev1")
    _blob_path(services, gone.sha256).unlink()
    report = fsck(services, SYSTEM)
    assert [(f.kind, f.subject, f.listed) for f in report.unservable] == [
        ("missing-blob", gone.filename, True)
    ]
    assert live_filenames(services, "demo") == {gone.filename, ok.filename}  # report only
    report = fsck(services, SYSTEM, repair=True)
    assert report.unservable == [] and kinds(report) == [("missing-blob", True)]
    assert live_filenames(services, "demo") == {ok.filename}
    with services.db.read() as session:
        row = session.get(File, gone.id)
        assert row is not None and row.removed_reason == "lost"
    # The unlisted row stays in history without bytes: known, no longer a problem.
    assert fsck(services, SYSTEM).findings == []


def test_missing_metadata_is_extracted_again_from_the_wheel(
    services: Services, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "w", "demo", "1.0")
    metadata = read_wheel_metadata(wheel)
    seeded = add_file(services, "demo", "1.0", content=wheel.read_bytes())

    def fix(session):  # type: ignore[no-untyped-def]
        row = session.execute(select(File)).scalar_one()
        row.metadata_sha256 = hashlib.sha256(metadata).hexdigest()

    services.db.run_write(fix)
    meta_digest = hashlib.sha256(metadata).hexdigest()
    put_blob(services, metadata)
    _blob_path(services, meta_digest).unlink()
    _age(_blob_path(services, seeded.metadata_sha256), 7200)  # the seed's now-unused metadata
    report = fsck(services, SYSTEM, repair=True)
    assert kinds(report) == [("missing-metadata", True), ("orphan-blob", True)]
    assert _blob_path(services, meta_digest).read_bytes() == metadata


def test_corrupt_blob_is_quarantined_and_unlisted(services: Services) -> None:
    bad = add_file(services, "demo", "1.0.dev2")
    good = add_file(services, "demo", "1.0.dev1")
    path = _blob_path(services, bad.sha256)
    path.write_bytes(b"flipped bits")
    report = fsck(services, SYSTEM)
    assert [f.kind for f in report.unservable] == ["corrupt-blob"]
    report = fsck(services, SYSTEM, repair=True)
    assert report.unservable == []
    assert (services.settings.data / "quarantine" / bad.sha256).read_bytes() == b"flipped bits"
    assert live_filenames(services, "demo") == {good.filename}
    # Without hashing, corruption goes unnoticed (documented trade-off of --no-verify).
    good_path = _blob_path(services, good.sha256)
    good_path.write_bytes(b"also flipped")
    assert fsck(services, SYSTEM, verify=False).findings == []
    assert [f.kind for f in fsck(services, SYSTEM).findings] == ["corrupt-blob"]


def test_orphans_and_temp_files_from_a_crash(services: Services) -> None:
    add_file(services, "demo", "1.0")
    orphan = put_blob(services, b"stored, never recorded")
    fresh_orphan = put_blob(services, b"an upload in flight")
    _age(_blob_path(services, orphan), 7200)
    tmp = services.settings.tmp_dir
    stale_part = tmp / "upload-dead.part"
    stale_part.write_bytes(b"half an upload")
    _age(stale_part, 7200)
    running_part = tmp / "upload-running.part"
    running_part.write_bytes(b"being written")
    partial_copy = _blob_path(services, orphan).with_name(f".{orphan}.999.part")
    partial_copy.write_bytes(b"half a copy")
    _age(partial_copy, 7200)

    report = fsck(services, SYSTEM)
    assert kinds(report) == [
        ("in-progress", False),
        ("orphan-blob", False),
        ("recent-orphan", False),
        ("temp-file", False),
        ("temp-file", False),
    ]
    assert report.unservable == [] and len(report.problems) == 3
    report = fsck(services, SYSTEM, repair=True)
    assert kinds(report) == [
        ("in-progress", False),
        ("orphan-blob", True),
        ("recent-orphan", False),
        ("temp-file", True),
        ("temp-file", True),
    ]
    assert not stale_part.exists() and not partial_copy.exists() and running_part.exists()
    assert not services.store.exists(blob_key(orphan))
    assert services.store.exists(blob_key(fresh_orphan))
    # --tmp-age 0: everything in tmp counts as a leftover.
    report = fsck(services, SYSTEM, repair=True, tmp_age=0)
    assert not running_part.exists()
    assert [f.kind for f in report.problems] == []


def test_interrupted_collection_is_put_back(services: Services) -> None:
    seeded = add_file(services, "demo", "1.0")
    path = _blob_path(services, seeded.sha256)
    aside = path.with_name(f".{path.name}.4242.gc")
    os.replace(path, aside)
    ctime_old = time.time() - 3600
    os.utime(aside, (ctime_old, ctime_old))  # mtime; ctime is now: still "running"
    report = fsck(services, SYSTEM)
    assert kinds(report) == [("in-progress", False), ("missing-blob", False)]
    # With --tmp-age 0 (nothing else running), it is put back, not unlisted.
    report = fsck(services, SYSTEM, repair=True, tmp_age=0)
    assert kinds(report) == [("interrupted-gc", True)]
    assert path.exists() and not aside.exists()
    assert live_filenames(services, "demo") == {seeded.filename}
