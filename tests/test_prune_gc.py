"""Prune and garbage collection against a real database and blob store (no server)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from nightwheels.db.models import AuditEvent, File, Project, utcnow
from nightwheels.errors import InvalidRequest, NotFound, PruneAborted
from nightwheels.services import gc, prune, retention, stats
from nightwheels.services.audit import SYSTEM
from nightwheels.services.context import Services
from nightwheels.storage.base import blob_key
from nightwheels.storage.staging import write_bytes_staged
from tests.support.seed import add_file, live_filenames, open_services, postgres_database

LINUX = "cp312-cp312-manylinux_2_17_x86_64"
MAC = "cp312-cp312-macosx_11_0_arm64"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url, drop = postgres_database() if request.param == "postgresql" else (None, lambda: None)
    s = open_services(
        tmp_path / "data", database_url=url, retention_keep=2, retention_days=30, history_days=30
    )
    yield s
    s.close()
    drop()


def _row(services: Services, file_id: int) -> File:
    with services.db.read() as session:
        row = session.get(File, file_id)
        assert row is not None
        return row


def _age_blob(services: Services, sha256: str, days: float) -> None:
    path = services.store.local_path(blob_key(sha256))
    assert path is not None
    t = time.time() - days * 86400
    os.utime(path, (t, t))


def test_prune_marks_rows_and_keeps_them_downloadable(services: Services) -> None:
    changed: list[tuple[str, int]] = []
    services.listeners.append(lambda name, serial: changed.append((name, serial)))
    new = add_file(services, "demo", "1.0.dev3", days_ago=1)
    mid = add_file(services, "demo", "1.0.dev2", days_ago=2)
    old = add_file(services, "demo", "1.0.dev1", days_ago=3)
    with services.db.read() as session:
        serial_before = session.execute(select(Project.serial)).scalar_one()

    result = prune.prune(services, SYSTEM)
    assert [d.file.filename for d in result.removed["demo"]] == [old.filename]
    assert live_filenames(services, "demo") == {new.filename, mid.filename}
    row = _row(services, old.id)
    assert row.removed_reason == "pruned" and row.removed_at is not None
    with services.db.read() as session:
        project = session.execute(select(Project)).scalar_one()
        assert project.serial > serial_before
        events = session.execute(
            select(AuditEvent).where(AuditEvent.action == "files.prune")
        ).scalars()
        (event,) = list(events)
    assert event.project == "demo" and event.details["count"] == 1
    ((filename, label, reason),) = event.details["files"]
    assert (filename, label) == (old.filename, "main") and "not among the newest 2" in reason
    assert changed == [("demo", project.serial)]
    # Bytes stay (history window); a second prune finds nothing more.
    assert services.store.exists(blob_key(old.sha256))
    assert prune.prune(services, SYSTEM).removed == {}


def test_dry_run_changes_nothing(services: Services) -> None:
    for n in range(4):
        add_file(services, "demo", f"1.0.dev{n}", days_ago=10 - n)
    result = prune.prune(services, SYSTEM, dry_run=True, force=True)
    assert len(result.plan.removals) == 2 and result.removed == {}
    assert len(live_filenames(services, "demo")) == 4


def test_a_parse_error_anywhere_aborts_before_any_removal(services: Services) -> None:
    for n in range(4):
        add_file(services, "aaa", f"1.0.dev{n}", days_ago=10 - n)
    add_file(services, "zzz", "1.0", days_ago=1)

    def corrupt(session):  # type: ignore[no-untyped-def]
        session.execute(update(File).where(File.version == "1.0").values(filename="zzz-oops.whl"))

    services.db.run_write(corrupt)
    with pytest.raises(PruneAborted, match="nothing was removed") as info:
        prune.prune(services, SYSTEM, force=True)
    assert "zzz-oops.whl" in info.value.message
    assert len(live_filenames(services, "aaa")) == 4


def test_share_guard_and_force(services: Services) -> None:
    for n in range(6):
        add_file(services, "demo", f"1.0.dev{n}", days_ago=10 - n)
    result = prune.prune(services, SYSTEM)
    assert result.removed == {} and result.plan.refused[0].project == "demo"
    assert "4 of 6 files" in (result.plan.refused[0].refused or "")
    result = prune.prune(services, SYSTEM, force=True)
    assert result.removed_count == 4


def test_changes_after_planning_only_make_a_run_remove_less(services: Services) -> None:
    files = [add_file(services, "demo", f"1.0.dev{n}", days_ago=10 - n) for n in range(4)]
    plan = prune.build_plan(services, force=True)
    assert {d.file.id for _, d in plan.removals} == {files[0].id, files[1].id}
    # Meanwhile an admin pins one planned file and another process prunes the other.
    retention.set_pinned(services, SYSTEM, "demo", version="1.0.dev0")
    prune.prune(services, SYSTEM, force=True, projects=["demo"])
    result = prune.apply_plan(services, SYSTEM, plan, force=True)
    assert result.removed == {} and result.skipped == {"demo": 2}
    assert files[0].filename in live_filenames(services, "demo")


def test_a_project_changed_in_the_middle_of_a_batch_is_planned_again(
    services: Services,
) -> None:
    """Only the project whose serial moved since planning is evaluated again; the others
    of its transaction are applied as planned."""
    files = {
        name: [add_file(services, name, f"1.0.dev{n}", days_ago=10 - n) for n in range(4)]
        for name in ("aaa", "bbb", "ccc")
    }
    plan = prune.build_plan(services, force=True)
    retention.set_pinned(services, SYSTEM, "bbb", version="1.0.dev0")
    result = prune.apply_plan(services, SYSTEM, plan, force=True)
    assert sorted(result.removed) == ["aaa", "bbb", "ccc"]
    assert [d.file.id for d in result.removed["bbb"]] == [files["bbb"][1].id]
    assert result.skipped == {"bbb": 1}
    assert files["bbb"][0].filename in live_filenames(services, "bbb")
    assert len(live_filenames(services, "aaa")) == len(live_filenames(services, "ccc")) == 2
    with services.db.write() as session:  # totals and aggregates kept by every bump
        live_bytes = session.execute(
            select(func.sum(File.size)).where(File.removed_at.is_(None))
        ).scalar_one()
        assert stats.totals(session) == stats.IndexTotals(3, 7, int(live_bytes))
        assert stats.refresh_all(session) == 0


def test_per_project_overrides(services: Services) -> None:
    for n in range(4):
        add_file(services, "keepall", f"1.0.dev{n}", days_ago=100 - n)
        add_file(services, "keepthree", f"1.0.dev{n}", days_ago=10 - n)
    retention.set_retention(services, SYSTEM, "keepall", {"retention_exempt": True})
    info = retention.set_retention(services, SYSTEM, "keepthree", {"retention_keep": 3})
    assert info.effective.keep == 3 and info.keep == 3
    prune.prune(services, SYSTEM, force=True)
    assert len(live_filenames(services, "keepall")) == 4
    assert len(live_filenames(services, "keepthree")) == 3
    info = retention.set_retention(services, SYSTEM, "keepthree", {"retention_keep": None})
    assert info.keep is None and info.effective.keep == 2
    with pytest.raises(InvalidRequest, match="at least 1"):
        retention.set_retention(services, SYSTEM, "keepthree", {"retention_days": 0})
    with pytest.raises(InvalidRequest, match="unknown"):
        retention.set_retention(services, SYSTEM, "keepthree", {"serial": 1})
    with pytest.raises(NotFound):
        retention.set_retention(services, SYSTEM, "nope", {"retention_keep": 1})
    with pytest.raises(NotFound):
        prune.prune(services, SYSTEM, projects=["nope"])


def test_usage_counts_listed_and_history_bytes(services: Services) -> None:
    add_file(services, "demo", "1.0.dev1", content=b"x" * 100)
    add_file(
        services,
        "demo",
        "1.0.dev0",
        content=b"y" * 30,
        removed_days_ago=1,
        removed_reason="replaced",
    )
    retention.set_retention(services, SYSTEM, "demo", {"quota_bytes": 1000})
    with services.db.read() as session:
        (u,) = retention.usage(session, "demo")
    assert (u.live_files, u.live_bytes, u.history_files, u.history_bytes) == (1, 100, 1, 30)
    assert u.quota_bytes == 1000 and u.quota_share == 0.1


def test_gc_keeps_history_then_purges_rows_and_bytes(services: Services) -> None:
    services.settings.gc_grace_hours = 1
    live = add_file(services, "demo", "1.0.dev2")
    in_history = add_file(
        services, "demo", "1.0.dev1", removed_days_ago=10, removed_reason="pruned"
    )
    expired = add_file(services, "demo", "1.0.dev0", removed_days_ago=31, removed_reason="pruned")
    # Same bytes as the expired file, under another label: the blob must stay.
    shared = add_file(services, "demo", "1.0.dev0", label="rc", content=b"shared")
    expired_shared = add_file(
        services, "demo", "0.9", content=b"shared", removed_days_ago=40, removed_reason="replaced"
    )
    for f in (live, in_history, expired, shared):
        _age_blob(services, f.sha256, 60)
        _age_blob(services, f.metadata_sha256, 60)

    dry = gc.collect(services, SYSTEM, dry_run=True)
    assert dry.purged_rows == 2 and dry.deleted == [blob_key(expired.sha256)]
    assert services.store.exists(blob_key(expired.sha256))

    result = gc.collect(services, SYSTEM)
    assert result.purged_rows == 2
    assert result.deleted == [blob_key(expired.sha256)]
    store = services.store
    for kept in (live, in_history, shared):
        assert store.exists(blob_key(kept.sha256))
    assert store.exists(blob_key(expired_shared.sha256))
    # metadata of the purged file is shared with the rc row (same project/version): kept
    assert store.exists(blob_key(expired.metadata_sha256))
    with services.db.read() as session:
        ids = {i for (i,) in session.execute(select(File.id))}
    assert ids == {live.id, in_history.id, shared.id}


def test_gc_spares_recent_orphans_and_restored_blobs(services: Services) -> None:
    services.settings.gc_grace_hours = 1
    store = services.store
    staged = write_bytes_staged(services.settings.tmp_dir, b"orphan bytes")
    key = blob_key(staged.sha256)
    store.put_file(key, staged.path)
    # A fresh orphan (an upload between storing its blob and recording its row) is kept.
    assert gc.collect(services, SYSTEM).deleted == [] and store.exists(key)
    # Old: deleted.
    _age_blob(services, staged.sha256, 1)
    assert gc.collect(services, SYSTEM).deleted == [key] and not store.exists(key)

    # An old orphan that an upload stores again (same bytes) is in use: put_file refreshes it.
    staged = write_bytes_staged(services.settings.tmp_dir, b"orphan bytes")
    store.put_file(key, staged.path)
    _age_blob(services, staged.sha256, 1)
    again = write_bytes_staged(services.settings.tmp_dir, b"orphan bytes")
    store.put_file(key, again.path)
    assert not again.path.exists()
    assert gc.collect(services, SYSTEM).deleted == [] and store.exists(key)


def test_delete_if_idle_puts_back_a_blob_touched_before_the_rename(services: Services) -> None:
    store = services.store
    staged = write_bytes_staged(services.settings.tmp_dir, b"bytes")
    key = blob_key(staged.sha256)
    store.put_file(key, staged.path)
    cutoff = utcnow() - timedelta(minutes=1)
    assert store.delete_if_idle(key, cutoff) is False  # fresh
    assert store.exists(key) and list(store.leftovers()) == []
    _age_blob(services, staged.sha256, 1)
    assert store.delete_if_idle(key, cutoff) is True and not store.exists(key)
    assert store.delete_if_idle(key, cutoff) is False  # already gone


def test_recover_interrupted_collection(services: Services) -> None:
    store = services.store
    staged = write_bytes_staged(services.settings.tmp_dir, b"moved aside")
    key = blob_key(staged.sha256)
    store.put_file(key, staged.path)
    path = store.local_path(key)
    assert path is not None
    aside = path.with_name(f".{path.name}.12345.gc")
    os.replace(path, aside)  # a collection killed between its rename and its decision
    assert gc.recover_interrupted(store) == 0  # too recent: maybe a running collection
    assert gc.recover_interrupted(store, min_age=0) == 1
    assert store.exists(key) and not aside.exists()


def test_prune_is_paced_by_the_cost_of_its_changes_not_a_fixed_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19.6: 25 projects a second was itself a floor (80 s for 2,000 projects). The
    pace now follows what each change costs a server to re-render: changes costing 4 ms a
    project, at a quarter of a server's time, are 16 ms a project apart (1.6 s for 100
    projects, not 4). One project of each transaction's batch is measured and the others
    are counted by their listed files (here all the same size). The sleeps are recorded
    instead of slept, so a loaded machine cannot change them."""
    from nightwheels.core.pacing import CostPacer
    from tests.support.seed import bulk_seed

    costs: list[str] = []
    slept: list[float] = []

    def cost(_services: Services, name: str, labels: object) -> float:
        costs.append(name)
        return 0.004

    class Recorded(CostPacer):
        def __init__(self, share: float, rate: float = 0.0) -> None:
            super().__init__(share, rate, sleep=slept.append)

    monkeypatch.setattr(prune, "render_cost", cost)
    monkeypatch.setattr(prune, "CostPacer", Recorded)
    monkeypatch.setattr(prune, "BATCH_PROJECTS", 10)
    s = open_services(tmp_path / "data", retention_keep=1, prune_max_share=1)
    try:
        bulk_seed(s, projects=100, versions=3, tags=("py3-none-any",))
        result = prune.prune(s, SYSTEM)
        assert result.removed_count == 200 and len(result.removed) == 100
        assert len(costs) == 10  # one project measured per transaction of 10
        assert 0 < sum(slept) <= 100 * 0.004 / 0.25 < 100 / 25
        assert max(slept) <= 10 * 0.016
    finally:
        s.close()


def test_prune_commits_many_projects_per_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 19.6: one transaction per project cost 8 statements and a commit each (188 s
    for 2,083 projects on a loaded machine). A batch of projects shares its statements and
    its commit; each changed project still gets a serial of its own, its aggregates and
    its audit event, and a batch boundary changes nothing about what is removed."""
    from sqlalchemy import event

    from tests.support.seed import bulk_seed

    monkeypatch.setattr(prune, "BATCH_PROJECTS", 16)
    s = open_services(tmp_path / "data", retention_keep=2, prune_max_share=1)
    try:
        bulk_seed(s, projects=40, versions=5, tags=(LINUX, MAC))
        with s.db.read() as session:
            serial_before = session.execute(select(func.max(Project.serial))).scalar_one()
        announced: list[tuple[str, int]] = []
        s.listeners.append(lambda name, serial: announced.append((name, serial)))
        statements: list[str] = []
        commits: list[int] = []
        event.listen(
            s.db.write_engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2])
        )
        event.listen(s.db.write_engine, "commit", lambda conn: commits.append(1))
        plan = prune.build_plan(s)
        result = prune.apply_plan(s, SYSTEM, plan)
        assert result.removed_count == 40 * 3 * 2 and len(result.removed) == 40
        assert len(commits) == 3  # 16 + 16 + 8 projects
        assert len(statements) < 40  # was 8 a project
        # Nothing changed since planning: no project's files are read again (only the
        # aggregates the serial bump keeps, one statement a batch).
        reread = [s for s in statements if "FROM files" in s and "GROUP BY" not in s]
        assert reread == []
        with s.db.read() as session:
            rows = session.execute(
                select(Project.name, Project.serial, Project.live_files, Project.live_versions)
            ).all()
            events = session.execute(
                select(AuditEvent.project, AuditEvent.details).where(
                    AuditEvent.action == "files.prune"
                )
            ).all()
        serials = sorted(serial for _, serial, _, _ in rows)
        assert serials == list(range(serial_before + 1, serial_before + 41))
        assert all(files == 4 and versions == 2 for _, _, files, versions in rows)
        assert sorted(announced) == sorted((name, serial) for name, serial, _, _ in rows)
        assert sorted(p for p, _ in events) == [f"proj{i:05d}" for i in range(40)]
        assert all(d["count"] == 6 and len(d["files"]) == 6 for _, d in events)
        with s.db.write() as session:
            assert stats.refresh_all(session) == 0  # the aggregates were kept exactly
    finally:
        s.close()


def test_a_purge_by_another_process_ends_a_servers_cached_file_url(services: Services) -> None:
    """gc forgetting a row is a change a server learns from the serial poll: its file lookup
    stops serving the URL, even where the bytes stay (another file has the same bytes)."""
    from nightwheels.server.files import FileLookup
    from nightwheels.server.pages import PageCache

    services.settings.gc_grace_hours = 1
    add_file(services, "demo", "1.0", content=b"shared")
    expired = add_file(
        services, "demo", "0.9", content=b"shared", removed_days_ago=40, removed_reason="pruned"
    )
    server = Services.from_settings(services.settings)  # a server process: its own caches
    try:
        pages = PageCache(server)
        pages.refresh()
        lookup = FileLookup(server, pages)
        url = (expired.sha256[:32], expired.filename)
        assert lookup(*url) is not None  # within history: served, and cached
        assert gc.collect(services, SYSTEM).purged_rows == 1
        assert services.store.exists(blob_key(expired.sha256))  # the bytes stay
        pages.refresh()  # one tick of the serial poll
        assert lookup.cached(*url) is None
        assert lookup(*url) is None
    finally:
        server.close()
