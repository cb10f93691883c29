"""Several servers on one database and one file store; PostgreSQL and S3 specifics.

On the ``postgres`` backend the servers share a PostgreSQL database and an S3 bucket and
have nothing else in common (each its own data directory for staging). On ``sqlite`` they
share the data directory: the embedded default's form of several processes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from nightwheels.db.models import File
from nightwheels.services import stats
from nightwheels.services.audit import SYSTEM
from nightwheels.services.fsck import fsck
from tests.support import clients
from tests.support.backends import SQLITE_ONLY, Backend, fresh_database
from tests.support.cli import Outcome, nightwheels
from tests.support.consistency import index_problems
from tests.support.server import LiveServer, free_port, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = "application/vnd.pypi.simple.v1+json"


def upload(
    server: LiveServer, token: str, wheel: Path, version: str, name: str = "demo"
) -> httpx.Response:
    return post_wheel(server, token, wheel, name=name, version=version)


@pytest.fixture
def pair(tmp_path: Path, backend: Backend) -> Iterator[tuple[LiveServer, LiveServer]]:
    """Two servers on one index (each with its own database pool, page cache and poller)."""
    shared = backend.name == "sqlite"
    a = LiveServer(data=tmp_path / "a" / "data", backend=backend)
    b = LiveServer(data=a.data if shared else tmp_path / "b" / "data", backend=backend)
    a.data.mkdir(parents=True)
    b.data.mkdir(parents=True, exist_ok=True)
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_upload_through_one_install_through_the_other(
    pair: tuple[LiveServer, LiveServer], tmp_path: Path
) -> None:
    a, b = pair
    a.create_user("alice")
    token = a.token("alice", "demo")
    clients.twine_upload(a.upload_url, token, make_wheel(tmp_path / "1", "demo", "1.0.dev1"))
    assert wait_for(lambda: httpx.get(b.simple_url + "demo/").status_code == 200, timeout=1)
    before = httpx.get(b.simple_url + "demo/", headers={"Accept": JSON}).headers["etag"]

    wheel = make_wheel(tmp_path / "2", "demo", "1.0.dev2", module_source="WHERE = 'a'\n")
    clients.twine_upload(a.upload_url, token, wheel)
    uploaded = time.monotonic()
    assert wait_for(lambda: wheel.name in httpx.get(b.simple_url + "demo/").text, timeout=1.0)
    seen_after = time.monotonic() - uploaded
    assert seen_after < 1.0

    for accept in (JSON, "text/html"):
        on_a = httpx.get(a.simple_url + "demo/", headers={"Accept": accept})
        on_b = httpx.get(b.simple_url + "demo/", headers={"Accept": accept})
        assert on_a.content == on_b.content
        assert on_a.headers["etag"] == on_b.headers["etag"]
        revalidated = httpx.get(
            b.simple_url + "demo/",
            headers={"Accept": accept, "If-None-Match": on_a.headers["etag"]},
        )
        assert revalidated.status_code == 304
    after = httpx.get(b.simple_url + "demo/", headers={"Accept": JSON}).headers["etag"]
    assert after != before

    target = tmp_path / "site"
    clients.pip(
        "install",
        "--pre",
        "--no-deps",
        "--index-url",
        b.simple_url,
        "--target",
        str(target),
        "demo==1.0.dev2",
    )
    assert (target / "demo" / "__init__.py").read_text() == "WHERE = 'a'\n"

    # A change made by the admin CLI (a third process) reaches both servers too.
    b.cli("yank", "demo", "1.0.dev1", "--reason", "bad")

    def yanked(server: LiveServer) -> bool:
        files = httpx.get(server.simple_url + "demo/", headers={"Accept": JSON}).json()["files"]
        return any(f["yanked"] == "bad" for f in files)

    assert wait_for(lambda: yanked(a) and yanked(b), timeout=1.0)


def test_concurrent_uploads_across_two_servers(
    pair: tuple[LiveServer, LiveServer], backend: Backend, tmp_path: Path
) -> None:
    a, b = pair
    a.create_user("alice")
    token = a.token("alice", "demo")
    distinct = [make_wheel(tmp_path / f"d{i}", "demo", f"2.0.dev{i}") for i in range(20)]
    racing = [
        make_wheel(tmp_path / f"r{i}", "demo", "3.0.dev0", module_source=f"RACER = {i}\n")
        for i in range(5)
    ]
    assert len({w.name for w in racing}) == 1 and len({w.read_bytes() for w in racing}) == 5
    jobs = [(w, f"2.0.dev{i}") for i, w in enumerate(distinct)] + [(w, "3.0.dev0") for w in racing]

    def send(job: tuple[int, tuple[Path, str]]) -> httpx.Response:
        i, (wheel, version) = job
        return upload(a if i % 2 else b, token, wheel, version)

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        responses = list(pool.map(send, enumerate(jobs)))

    for (wheel, _), response in zip(jobs, responses, strict=True):
        # Every upload lands, or fails cleanly: a conflict the client is told to retry.
        assert response.status_code in (200, 409), (wheel.name, response.text)
        assert "Traceback" not in response.text and "internal" not in response.text.lower()
    landed = [r for r in responses if r.status_code == 200]
    assert all(r.status_code == 200 for r in responses[:20])
    assert len(landed) >= 21

    services = backend.services(a.data)
    try:
        assert index_problems(services) == []
        report = fsck(services, SYSTEM)  # the product's own check agrees: fsck clean
        assert report.problems == [] and report.rows == len(landed)
        with services.db.write() as session:  # aggregates and index totals exact
            assert stats.refresh_all(session) == 0
        with services.db.read() as session:
            rows = session.execute(select(File.filename, File.sha256, File.removed_at)).all()
    finally:
        services.close()
    live = {name: sha for name, sha, removed in rows if removed is None}
    assert len(live) == 21
    racer_digests = {hashlib.sha256(w.read_bytes()).hexdigest() for w in racing}
    assert live[racing[0].name] in racer_digests
    raced_rows = [r for r in rows if r[0] == racing[0].name]
    assert len(raced_rows) == sum(r.status_code == 200 for r in responses[20:])

    # Both servers converge on the same page, listing exactly the live files.
    def same_page() -> bool:
        pages = [httpx.get(s.simple_url + "demo/", headers={"Accept": JSON}) for s in pair]
        return pages[0].content == pages[1].content and len(pages[0].json()["files"]) == 21

    assert wait_for(same_page, timeout=1.0)
    page = httpx.get(b.simple_url + "demo/", headers={"Accept": JSON}).json()
    entry = next(f for f in page["files"] if f["filename"] == racing[0].name)
    assert entry["hashes"]["sha256"] == live[racing[0].name]
    body = httpx.get(httpx.URL(b.simple_url + "demo/").join(entry["url"])).content
    assert hashlib.sha256(body).hexdigest() == live[racing[0].name]


def test_a_local_change_does_not_hide_an_earlier_remote_one(
    tmp_path: Path, backend: Backend
) -> None:
    """B learns of its own upload at once; A's upload just before it (a lower serial)
    must still reach B at its next poll, not be skipped for ever."""
    shared = backend.name == "sqlite"
    a = LiveServer(data=tmp_path / "a" / "data", backend=backend)
    b = LiveServer(
        data=a.data if shared else tmp_path / "b" / "data",
        backend=backend,
        env={"NIGHTWHEELS_SERIAL_POLL_INTERVAL": "2"},
    )
    a.data.mkdir(parents=True)
    b.data.mkdir(parents=True, exist_ok=True)
    a.start()
    b.start()
    try:
        a.create_user("alice")
        token = a.token("alice", "xproj", "yproj")
        for name in ("xproj", "yproj"):
            wheel = make_wheel(tmp_path / f"{name}1", name, "1.0")
            assert upload(a, token, wheel, "1.0", name).status_code == 200
        assert wait_for(lambda: httpx.get(b.simple_url + "xproj/").status_code == 200, timeout=4)
        assert "xproj-1.0-" in httpx.get(b.simple_url + "xproj/").text  # cached on B

        x2 = make_wheel(tmp_path / "x2", "xproj", "2.0")
        assert upload(a, token, x2, "2.0", "xproj").status_code == 200
        y2 = make_wheel(tmp_path / "y2", "yproj", "2.0")
        assert upload(b, token, y2, "2.0", "yproj").status_code == 200
        assert y2.name in httpx.get(b.simple_url + "yproj/").text  # B's own change: at once
        assert wait_for(lambda: x2.name in httpx.get(b.simple_url + "xproj/").text, timeout=4)
        assert "xproj" in httpx.get(b.simple_url).text
    finally:
        a.stop()
        b.stop()


@SQLITE_ONLY
def test_the_project_list_follows_changes(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    """The list is re-read only for changed projects: appearing, and leaving with its last file."""
    assert httpx.get(server.simple_url).text.count("<a ") == 0
    assert (
        upload(server, uploader, make_wheel(tmp_path / "1", "demo", "1.0"), "1.0").status_code
        == 200
    )
    assert '<a href="demo/">demo</a>' in httpx.get(server.simple_url).text
    other = server.token("alice", "other")
    assert (
        upload(
            server, other, make_wheel(tmp_path / "2", "other", "1.0"), "1.0", "other"
        ).status_code
        == 200
    )
    names = [
        p["name"] for p in httpx.get(server.simple_url, headers={"Accept": JSON}).json()["projects"]
    ]
    assert names == ["demo", "other"]
    services = server.backend.services(server.data)
    try:
        from nightwheels.db.models import File, Project, utcnow
        from nightwheels.services import serials

        def remove(session) -> int:  # type: ignore[no-untyped-def]
            project = session.execute(select(Project).where(Project.name == "demo")).scalar_one()
            for row in session.execute(select(File).where(File.project_id == project.id)).scalars():
                row.removed_at = utcnow()
                row.removed_reason = "deleted"
            return serials.bump(session, project)

        services.db.run_write(remove)
    finally:
        services.close()
    assert wait_for(lambda: "demo" not in httpx.get(server.simple_url).text, timeout=2)
    assert httpx.get(server.simple_url + "demo/").status_code == 404
    assert '<a href="other/">other</a>' in httpx.get(server.simple_url).text


# -- PostgreSQL and S3 specifics -------------------------------------------------------


def nw(data: Path, env: dict[str, str], *args: str) -> Outcome:
    """The CLI in-process, on ``data`` with ``env`` (the entry point is tested in test_cli)."""
    return nightwheels(*args, NIGHTWHEELS_DATA=str(data), **env)


@pytest.mark.postgres
def test_db_upgrade_on_postgresql_matches_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    from nightwheels.db.models import Base

    with fresh_database() as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")  # normalised by settings
        env = {"NIGHTWHEELS_DATABASE_URL": plain}
        first = nw(tmp_path, env, "db", "upgrade")
        assert first.returncode == 0, first.stderr
        again = nw(tmp_path, env, "db", "upgrade")
        assert again.returncode == 0 and "up to date" in again.stdout
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                context = MigrationContext.configure(conn)
                assert context.get_current_heads()
                assert compare_metadata(context, Base.metadata) == []
        finally:
            engine.dispose()
    assert not (tmp_path / "nightwheels.db").exists()


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    env = {"NIGHTWHEELS_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    out = nw(tmp_path, env, "db", "upgrade")
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot use the database: ")
    assert out.stderr.count("\n") == 1


@pytest.mark.postgres
def test_serve_refuses_a_bucket_it_cannot_use(tmp_path: Path, moto_s3) -> None:  # type: ignore[no-untyped-def]
    env = {**moto_s3.env, "NIGHTWHEELS_STORAGE": "s3://no-such-bucket/x"}
    out = nw(tmp_path, env, "serve", "--port", str(free_port()))  # refused before listening
    assert out.returncode == 1
    assert out.stderr.startswith("error: cannot use bucket 'no-such-bucket'")
    assert "Traceback" not in out.stderr


@pytest.mark.postgres
def test_web_and_api_reads_on_postgresql(tmp_path: Path, scaled: Backend) -> None:
    """The browser tests run on SQLite; the pages' queries are checked here on PostgreSQL."""
    with LiveServer(data=tmp_path / "data", backend=scaled) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        assert upload(live, token, make_wheel(tmp_path, "demo", "1.0.dev1"), "1.0.dev1").is_success
        for path in ("/", "/search?q=dem", "/project/demo/", "/freshness/", "/account/sign-in"):
            response = httpx.get(live.url + path)
            assert response.status_code == 200, (path, response.text[:500])
        assert "demo-1.0.dev1-py3-none-any.whl" in httpx.get(live.url + "/project/demo/").text
        for path in ("/api/v1/projects", "/api/v1/projects/demo", "/-/metrics"):
            assert httpx.get(live.url + path).status_code == 200, path


@pytest.mark.postgres
def test_files_by_redirect_to_presigned_urls(
    tmp_path: Path, scaled: Backend, uv_cache: Path
) -> None:
    with LiveServer(
        data=tmp_path / "data", backend=scaled, env={"NIGHTWHEELS_REDIRECT_FILES": "true"}
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev1", module_source="R = 1\n")
        assert upload(live, token, wheel, "1.0.dev1").status_code == 200
        entry = httpx.get(live.simple_url + "demo/", headers={"Accept": JSON}).json()["files"][0]
        url = httpx.URL(live.simple_url + "demo/").join(entry["url"])
        response = httpx.get(url)
        assert response.status_code == 302
        location = response.headers["location"]
        assert location.startswith(scaled.s3.endpoint)  # type: ignore[union-attr]
        assert "X-Amz-Signature=" in location
        assert httpx.get(location).content == wheel.read_bytes()
        meta = httpx.get(str(url) + ".metadata", follow_redirects=True)
        assert hashlib.sha256(meta.content).hexdigest() == entry["core-metadata"]["sha256"]

        # pip and uv follow the redirect to the bucket.
        target = tmp_path / "site"
        clients.pip(
            "install", "--pre", "--no-deps", "--index-url", live.simple_url,
            "--target", str(target), "demo",
        )  # fmt: skip
        assert (target / "demo" / "__init__.py").read_text() == "R = 1\n"
        clients.uv(
            "pip", "install", "--target", str(tmp_path / "uv-site"), "--prerelease=allow",
            "--index-url", live.simple_url, "demo", cache=uv_cache,
        )  # fmt: skip
        assert (tmp_path / "uv-site" / "demo" / "__init__.py").is_file()


@pytest.mark.postgres
def test_files_by_redirect_to_a_public_url(tmp_path: Path, scaled: Backend) -> None:
    assert scaled.s3 is not None and scaled.bucket is not None
    scaled.s3.make_public(scaled.bucket)
    public = f"{scaled.s3.endpoint}/{scaled.bucket}/{scaled.prefix}"
    with LiveServer(
        data=tmp_path / "data",
        backend=scaled,
        env={"NIGHTWHEELS_REDIRECT_FILES": "1", "NIGHTWHEELS_STORAGE_PUBLIC_URL": public + "/"},
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev1")
        assert upload(live, token, wheel, "1.0.dev1").status_code == 200
        entry = httpx.get(live.simple_url + "demo/", headers={"Accept": JSON}).json()["files"][0]
        response = httpx.get(httpx.URL(live.simple_url + "demo/").join(entry["url"]))
        digest = entry["hashes"]["sha256"]
        assert response.status_code == 302
        assert (
            response.headers["location"] == f"{public}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
        )
        assert httpx.get(response.headers["location"]).content == wheel.read_bytes()


@pytest.mark.postgres
def test_streamed_from_the_bucket_and_missing_bytes_are_410(
    tmp_path: Path, scaled: Backend
) -> None:
    with LiveServer(data=tmp_path / "data", backend=scaled) as live:
        live.create_user("alice")
        token = live.token("alice", "demo")
        wheel = make_wheel(tmp_path / "w", "demo", "1.0.dev1", payload=b"x" * 3_000_000)
        assert upload(live, token, wheel, "1.0.dev1").status_code == 200
        assert live.tmp_files() == []
        entry = httpx.get(live.simple_url + "demo/", headers={"Accept": JSON}).json()["files"][0]
        url = httpx.URL(live.simple_url + "demo/").join(entry["url"])
        body = httpx.get(url)
        assert body.status_code == 200
        assert body.content == wheel.read_bytes()
        assert body.headers["content-length"] == str(wheel.stat().st_size)
        digest = entry["hashes"]["sha256"]
        assert scaled.s3 is not None
        scaled.s3.client().delete_object(
            Bucket=scaled.bucket, Key=f"{scaled.prefix}/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
        )
        gone = httpx.get(url)
        assert gone.status_code == 410
        assert "no longer stored" in gone.text


def add_files(session: Any, project: Any, versions: list[str]) -> None:
    """Rows straight into the database (in-process cache tests): one tiny wheel a version."""
    for version in versions:
        session.add(
            File(
                project_id=project.id,
                filename=f"{project.name}-{version}-py3-none-any.whl",
                version=version,
                packagetype="bdist_wheel",
                sha256=hashlib.sha256(f"{project.name}-{version}".encode()).hexdigest(),
                size=1,
            )
        )


def test_page_memory_is_bounded(tmp_path: Path) -> None:
    """Pages beyond the budget are evicted oldest first and rendered again when asked."""
    from nightwheels.config import Settings
    from nightwheels.db.migrate import upgrade
    from nightwheels.db.models import Project
    from nightwheels.server.pages import PageCache
    from nightwheels.services import serials
    from nightwheels.services.context import Services

    settings = Settings(data=tmp_path)
    upgrade(settings.database)
    services = Services.from_settings(settings)
    try:
        with services.db.write() as session:
            for i in range(3):
                project = Project(name=f"p{i}", display_name=f"p{i}")
                session.add(project)
                session.flush()
                add_files(session, project, [f"{v}.0" for v in range(30)])
                serials.bump(session, project)
        cache = PageCache(services)
        cache.refresh()
        first = cache.project("main", "p0", "../../", "json")
        assert first is not None
        one = cache._bytes
        cache.max_bytes = int(one * 2.5)  # room for two pages
        assert cache.project("main", "p1", "../../", "json") is not None
        assert cache.project("main", "p2", "../../", "json") is not None
        assert cache._bytes <= cache.max_bytes
        assert cache.cached_project("main", "p0", "../../", "json") is None  # the oldest went
        assert cache.cached_project("main", "p2", "../../", "json") is not None
        again = cache.project("main", "p0", "../../", "json")
        assert again is not None
        assert {k: p.body for k, p in again.items()} == {k: p.body for k, p in first.items()}
        assert cache._bytes <= cache.max_bytes
    finally:
        services.close()


def test_as_of_page_memory_is_bounded(tmp_path: Path) -> None:
    """Every distinct moment is a new as-of entry: the cache holds them within its bytes."""
    from datetime import timedelta

    from nightwheels.config import Settings
    from nightwheels.core.simple_pages import JSON_TYPE
    from nightwheels.db.migrate import upgrade
    from nightwheels.db.models import Project, utcnow
    from nightwheels.server.asof import AsOfPages
    from nightwheels.server.pages import PageCache
    from nightwheels.services import serials
    from nightwheels.services.context import Services

    settings = Settings(data=tmp_path, asof_cache_mib=1)
    upgrade(settings.database)
    services = Services.from_settings(settings)
    try:
        with services.db.write() as session:
            project = Project(name="big", display_name="big")
            session.add(project)
            session.flush()
            add_files(session, project, [f"{v}.0" for v in range(400)])
            serials.bump(session, project)
        pages = PageCache(services)
        pages.refresh()
        asof = AsOfPages(services, pages)
        start = utcnow()
        first = asof.project(start, "main", "big", "../../../../")
        assert first is not None and b"big-399.0-py3-none-any.whl" in first[JSON_TYPE].body
        one = asof.bytes
        for i in range(1, 4 * (2**20 // one) + 1):  # four budgets' worth of moments
            assert asof.project(start + timedelta(seconds=i), "main", "big", "../../../../")
            asof.index(start + timedelta(seconds=i), "main")
            assert asof.bytes <= asof.max_bytes
        again = asof.project(start, "main", "big", "../../../../")  # evicted, rendered again
        assert again is not None and again[JSON_TYPE].body == first[JSON_TYPE].body
    finally:
        services.close()


def test_poll_renders_changed_pages_before_publishing(tmp_path: Path) -> None:
    """A page changed by another process is current in memory as soon as the poll learns of
    the change: no request waits for its render (a prune changes 1,000 pages a minute)."""
    from nightwheels.config import Settings
    from nightwheels.core.simple_pages import JSON_TYPE
    from nightwheels.db.migrate import upgrade
    from nightwheels.db.models import Project
    from nightwheels.server.pages import PageCache
    from nightwheels.services import serials
    from nightwheels.services.context import Services

    settings = Settings(data=tmp_path)
    upgrade(settings.database)
    services = Services.from_settings(settings)
    other = Services.from_settings(settings)  # "another process": no change listener

    def add(version: str) -> None:
        with other.db.write() as session:
            project = session.execute(select(Project).where(Project.name == "p")).scalar_one()
            add_files(session, project, [version])
            serials.bump(session, project)

    try:
        with other.db.write() as session:
            session.add(Project(name="p", display_name="p"))
        add("1.0")
        cache = PageCache(services)
        cache.refresh()
        assert cache.project("main", "p", "../../", "json") is not None
        add("2.0")
        stale = cache.cached_project("main", "p", "../../", "json")  # until the next poll
        assert stale is not None and b"p-2.0-" not in stale[JSON_TYPE].body
        cache.refresh()
        pages = cache.cached_project("main", "p", "../../", "json")
        assert pages is not None and b"p-2.0-py3-none-any.whl" in pages[JSON_TYPE].body
        assert cache.cached_project("main", "p", "../../", "html") is None  # never asked for
    finally:
        other.close()
        services.close()
