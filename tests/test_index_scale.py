"""Pages that summarise the whole index cost the same with 10x the files (issue 19 item 1).

The work is measured as SQLite virtual-machine steps (a progress handler), which, unlike a
timer, does not depend on the machine's load: a query that reads every file row takes ten
times the steps with ten times the rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nightwheels.db.models import File, Project
from nightwheels.server.app import create_app
from nightwheels.services import browse, freshness, listing, retention, serials, stats
from nightwheels.services.context import Services
from tests.support.seed import bulk_seed, open_services
from tests.support.server import wait_for

PROJECTS = 30


def steps(session: Session, fn: Callable[[Session], Any]) -> int:
    """SQLite VM steps (in units of 100) taken by ``fn``'s queries."""
    raw = session.connection().connection.dbapi_connection
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    raw.set_progress_handler(tick, 100)  # type: ignore[union-attr]
    try:
        fn(session)
    finally:
        raw.set_progress_handler(None, 100)  # type: ignore[union-attr]
    return count[0]


def add_history(services: Services, versions: int) -> None:
    """More versions in the same projects (live and removed rows), then the serial bumps
    that every change brings."""
    now = datetime.now(UTC)
    with services.db.write() as session:
        projects = session.execute(select(Project)).scalars().all()
        blob = session.execute(select(File.sha256, File.metadata_sha256)).first()
        assert blob is not None
        rows = [
            {
                "project_id": p.id,
                "label": "main",
                "filename": f"{p.name}-2.0.dev{v}-py3-none-any.whl",
                "version": f"2.0.dev{v}",
                "packagetype": "bdist_wheel",
                "sha256": blob[0],
                "size": 18,
                "metadata_sha256": blob[1],
                "uploaded_at": now - timedelta(days=v % 50, hours=1),
                "removed_at": now if v % 2 else None,
                "removed_reason": "pruned" if v % 2 else None,
            }
            for p in projects
            for v in range(versions)
        ]
        session.execute(insert(File), rows)
        for p in projects:
            serials.bump(session, p)


WHOLE_INDEX_READS: dict[str, Callable[[Session], Any]] = {
    "home": browse.home,
    "dashboard": lambda s: browse.dashboard(s, SETTINGS[0], datetime.now(UTC)),
    "metrics": stats.totals,
    "api projects": browse.project_list,
    "usage": retention.usage,
    "freshness": lambda s: freshness.freshness(s, SETTINGS[0]),
    "simple index": lambda s: listing.list_project_names(s, "main"),
}
SETTINGS: list[Any] = []


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path / "data")
    SETTINGS[:] = [services.settings]
    bulk_seed(services, projects=PROJECTS, versions=2, tags=("py3-none-any",))
    yield services
    services.close()


def test_whole_index_pages_cost_the_same_with_ten_times_the_files(index: Services) -> None:
    with index.db.read() as session:
        small = {name: steps(session, fn) for name, fn in WHOLE_INDEX_READS.items()}
    add_history(index, versions=60)  # 60 -> 1,860 files, 30 of them live per project
    with index.db.read() as session:
        assert stats.totals(session).files == PROJECTS * 32
        large = {name: steps(session, fn) for name, fn in WHOLE_INDEX_READS.items()}
    grown = {n: (small[n], large[n]) for n in small if large[n] > 1.5 * small[n] + 5}
    assert not grown, f"work grew with the number of files: {grown}"


def test_metrics_and_home_cost_the_same_with_ten_times_the_projects(index: Services) -> None:
    """Issue 19 item 1: /-/metrics summed a row per project (30 ms at 10,416 projects
    against 4.1 ms at 208). The totals are one row that every serial bump keeps current."""
    reads: dict[str, Callable[[Session], Any]] = {"metrics": stats.totals, "home": browse.home}
    with index.db.read() as session:
        small = {name: steps(session, fn) for name, fn in reads.items()}
    bulk_seed(index, projects=PROJECTS * 9, versions=2, tags=("py3-none-any",), prefix="more")
    with index.db.read() as session:
        assert stats.totals(session) == stats.IndexTotals(PROJECTS * 10, PROJECTS * 20, 18 * 600)
        large = {name: steps(session, fn) for name, fn in reads.items()}
    grown = {n: (small[n], large[n]) for n in small if large[n] > 1.5 * small[n] + 5}
    assert not grown, f"work grew with the number of projects: {grown}"


def test_aggregates_follow_every_change_and_fsck_style_refresh_finds_none_wrong(
    index: Services,
) -> None:
    add_history(index, versions=4)
    with index.db.write() as session:
        assert stats.refresh_all(session) == 0  # kept current by the bumps
        p = session.execute(select(Project).order_by(Project.name)).scalars().first()
        assert p is not None
        assert (p.live_files, p.live_versions, p.history_files) == (4, 4, 2)
        assert p.live_bytes == 4 * 18 and p.history_bytes == 2 * 18
        session.execute(
            File.__table__.update().where(File.project_id == p.id).values(removed_at=None)
        )
        assert stats.refresh_all(session) == 2  # edited by hand: the project and the totals
        session.refresh(p)
        assert (p.live_files, p.history_files) == (6, 0)


def _api(services: Services, path: str) -> httpx.Response:
    app = create_app(services.settings, services)

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_project_list_api_pages_with_a_link_to_the_next(index: Services) -> None:
    first = _api(index, "/api/v1/projects?limit=20")
    assert first.status_code == 200
    names = [p["name"] for p in first.json()]
    assert names == [f"proj{i:05d}" for i in range(20)]
    assert first.json()[0]["files"] == 2
    link = first.headers["link"]
    assert link.endswith('>; rel="next"') and "after=proj00019" in link
    rest = _api(index, link[1 : link.index(">")].replace("http://test", ""))
    assert [p["name"] for p in rest.json()] == [f"proj{i:05d}" for i in range(20, PROJECTS)]
    assert "link" not in rest.headers
    assert len(_api(index, "/api/v1/projects").json()) == PROJECTS  # default: 100 a page
    assert _api(index, "/api/v1/projects?limit=1001").status_code == 422


def test_freshness_dashboard_shows_a_page_of_projects(index: Services) -> None:
    with index.db.read() as session:
        view = browse.dashboard(session, index.settings, datetime.now(UTC), page=2, per_page=20)
    assert (view.projects, view.pages, view.page, len(view.rows)) == (PROJECTS, 2, 2, 10)
    page = _api(index, "/freshness/?page=2")
    assert page.status_code == 200 and f"Every project ({PROJECTS})" in page.text


def test_anonymous_summary_pages_are_rendered_once_per_change(index: Services) -> None:
    """A client looping on / or /freshness/ gets a shared copy until the index changes (or
    the minute turns), instead of a render and its queries each time."""
    from sqlalchemy import event

    app = create_app(index.settings, index)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(index.db.read_engine, "before_cursor_execute", record)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            got = []
            for path in ("/freshness/", "/", "/freshness/", "/", "/freshness/?page=1"):
                got.append(await client.get(path))
            with index.db.write() as session:  # a change anywhere: pages render again
                serials.bump(session, session.execute(select(Project)).scalars().first())
            app.state.nightwheels.pages.refresh()
            statements.clear()
            got.append(await client.get("/"))
            return got

    with ThreadPoolExecutor(1) as pool:
        responses = pool.submit(asyncio.run, run()).result()
    assert [r.status_code for r in responses] == [200] * 6
    assert responses[0].text == responses[2].text and responses[1].text == responses[3].text
    assert statements, "a change must make the page render again"
    event.remove(index.db.read_engine, "before_cursor_execute", record)


def test_anonymous_repeat_requests_query_nothing(index: Services) -> None:
    from sqlalchemy import event

    app = create_app(index.settings, index)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for path in ("/freshness/", "/", "/search?q=proj"):
                assert (await client.get(path)).status_code == 200
            event.listen(index.db.read_engine, "before_cursor_execute", record)
            for path in ("/freshness/", "/", "/search?q=proj") * 3:
                assert (await client.get(path)).status_code == 200

    try:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, run()).result()
    finally:
        event.remove(index.db.read_engine, "before_cursor_execute", record)
    assert [s for s in statements if "files" in s or "projects" in s] == []


def test_the_project_list_is_built_off_the_request_path(index: Services) -> None:
    """Issue 19 item 1: the first /simple/ after start queried every live file on the
    request; the poll thread now builds it at start, and keeps it ready after changes."""
    from nightwheels.server.pages import PageCache

    cache = PageCache(index)
    cache.start()
    try:
        assert wait_for(lambda: cache.cached_index("main") is not None, 10)
        with index.db.write() as session:
            serials.bump(session, session.execute(select(Project)).scalars().first())
        cache.poll_once()
        assert cache.cached_index("main") is not None  # re-rendered by the poll, not a request
    finally:
        cache.stop()


def test_a_request_during_the_first_project_list_build_waits_for_it(
    index: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first /simple/ after start arrived while the poll thread was building the list
    and built a second one beside it (527 ms at 100,000 files on a loaded machine, both
    builds competing for the interpreter): it now waits for the one under way."""
    import threading

    from nightwheels.server.pages import PageCache

    builds: list[int] = []
    started = threading.Event()
    real = listing.list_project_names

    def slow(session: Session, label: str) -> list[str]:
        builds.append(1)
        started.set()
        time.sleep(0.2)
        return real(session, label)

    monkeypatch.setattr(listing, "list_project_names", slow)
    cache = PageCache(index)
    cache.refresh()
    warm = threading.Thread(target=cache.index, args=("main",))
    warm.start()
    assert started.wait(10)
    pages = cache.index("main")  # the request, while the first build is under way
    warm.join()
    assert builds == [1]
    assert b"proj00000" in next(iter(pages.values())).body
