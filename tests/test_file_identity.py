"""A file's identity is (name, version, tags) per label, not its filename (issue 14 item 7).

With replacing off, another spelling of a file already there (a build tag, ``12.0.0`` for
``12.0``, another case) is refused with 409 and pip keeps installing the first bytes;
with replacing on it replaces the file, so one version and tag lists one file. The
database holds the rule too (a partial unique index), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from nightwheels.db.migrate import upgrade
from nightwheels.db.models import Base, File, Project
from tests.support import clients
from tests.support.backends import Backend
from tests.support.server import LiveServer
from tests.support.uploads import legacy_form, post_batch, post_wheel
from tests.support.wheels import make_sdist, make_wheel

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def spellings(tmp: Path) -> list[Path]:
    """One version and tag of projA, three filenames, three contents."""
    return [
        make_wheel(tmp / "a", "projA", "12.0", module_source="WHO = 'first'\n",
                   filename="projA-12.0-py3-none-any.whl"),
        make_wheel(tmp / "b", "projA", "12.0", module_source="WHO = 'build tag'\n",
                   filename="projA-12.0-1-py3-none-any.whl"),
        make_wheel(tmp / "c", "projA", "12.0.0", module_source="WHO = 'spelling'\n",
                   filename="proja-12.0.0-py3-none-any.whl"),
    ]  # fmt: skip


def listed(server: LiveServer, project: str = "proja") -> list[str]:
    response = httpx.get(f"{server.simple_url}{project}/", headers=JSON)
    return [f["filename"] for f in response.json()["files"]]


def installed(server: LiveServer, tmp: Path) -> str:
    target = tmp / f"site-{uuid.uuid4().hex[:6]}"
    clients.pip(
        "install", "--no-deps", "--index-url", server.simple_url, "--target", str(target),
        "projA==12.0",
    )  # fmt: skip
    return (target / "proja" / "__init__.py").read_text()


def test_replace_off_refuses_every_other_spelling(tmp_path: Path, backend: Backend) -> None:
    with LiveServer(
        data=tmp_path / "data",
        env={"NIGHTWHEELS_ALLOW_REPLACE": "false", "NIGHTWHEELS_ALLOW_SDIST": "true"},
        backend=backend,
    ) as live:
        live.create_user("alice")
        token = live.token("alice", "proja")
        first, build_tag, spelling = spellings(tmp_path)
        clients.twine_upload(live.upload_url, token, first)
        out = clients.twine_upload(live.upload_url, token, build_tag, check=False)
        assert out.returncode != 0
        assert "409" in out.stdout + out.stderr
        out = clients.uv_publish(
            live.upload_url, token, spelling, cache=tmp_path / "uv", check=False
        )
        assert out.returncode != 0
        response = post_wheel(live, token, spelling, name="projA", version="12.0.0")
        assert response.status_code == 409
        assert (
            "projA-12.0-py3-none-any.whl is already the py3-none-any wheel of version 12.0.0 "
            "in label 'main'"
        ) in response.text
        assert listed(live) == [first.name]
        assert installed(live, tmp_path) == "WHO = 'first'\n"
        # The same bytes under the same name: still "unchanged", not a conflict.
        assert post_wheel(live, token, first, name="projA").status_code == 200
        # Sdists: (name, version, "sdist").
        sdist = make_sdist(tmp_path / "s1", "projA", "12.0")
        other = make_sdist(tmp_path / "s2", "projA", "12.0.0")
        clients.twine_upload(live.upload_url, token, sdist)
        out = clients.twine_upload(live.upload_url, token, other, check=False)
        assert out.returncode != 0
        assert "409" in out.stdout + out.stderr
        assert sorted(listed(live)) == sorted([first.name, sdist.name])


def test_replace_on_keeps_one_file_per_version_and_tags(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    token = server.token("alice", "proja")
    first, build_tag, spelling = spellings(tmp_path)
    for wheel in (first, build_tag, spelling):
        response = post_wheel(server, token, wheel, name="projA", version="12.0")
        assert response.status_code == 200, response.text
        assert listed(server) == [wheel.name]
    assert installed(server, tmp_path) == "WHO = 'spelling'\n"
    # A tag set that overlaps the live one replaces it too (py3 is in py2.py3).
    both = make_wheel(tmp_path / "d", "projA", "12.0", "py2.py3-none-any", module_source="B=1\n")
    assert post_wheel(server, token, both, name="projA").status_code == 200
    assert listed(server) == [both.name]
    # Another tag is another file.
    native = make_wheel(tmp_path / "e", "projA", "12.0", "cp312-cp312-manylinux_2_17_x86_64")
    assert post_wheel(server, token, native, name="projA").status_code == 200
    assert sorted(listed(server)) == sorted([both.name, native.name])
    # One request carrying two spellings of one file: the second is refused.
    answer = post_batch(server, token, legacy_form(first, name="projA") + legacy_form(build_tag))
    results = answer.json()["results"]
    assert results[0]["outcome"] == "replaced", results
    assert (results[1]["outcome"], results[1]["status"]) == ("failed", 400), results
    assert "are the same version and tags" in results[1]["message"]


def test_concurrent_spellings_leave_one_live_file(
    server: LiveServer, uploader: str, tmp_path: Path
) -> None:
    """Eight uploads at once, each another spelling of one file: one stays live."""
    token = server.token("alice", "proja")
    wheels = [
        make_wheel(tmp_path / str(i), "projA", "12.0", module_source=f"N = {i}\n",
                   filename=f"projA-12.0-{i + 1}-py3-none-any.whl")
        for i in range(8)
    ]  # fmt: skip
    codes: list[int] = []

    def send(wheel: Path) -> None:
        codes.append(post_wheel(server, token, wheel, name="projA", version="12.0").status_code)

    threads = [threading.Thread(target=send, args=(w,)) for w in wheels]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(code in (200, 409) for code in codes), codes
    assert len(listed(server)) == 1


def test_the_database_refuses_two_live_files_of_one_identity(
    backend: Backend, tmp_path: Path
) -> None:
    services = backend.services(tmp_path)
    try:
        upgrade(services.settings.database)
        with services.db.write() as session:
            project = Project(name="proja", display_name="projA")
            session.add(project)
            session.flush()
            for name in ("projA-12.0-py3-none-any.whl", "proja-12.0-1-py3-none-any.whl"):
                session.add(File(project_id=project.id, filename=name, version="12.0",
                                 packagetype="bdist_wheel", sha256=name[:8], size=1))  # fmt: skip
        pytest.fail("two live files of one identity were committed")
    except IntegrityError as exc:
        assert "uq_files_identity" in str(exc) or "UNIQUE" in str(exc)
    finally:
        services.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    name = f"nw_identity_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_migration_keeps_the_newest_of_each_identity(database_url: str) -> None:
    upgrade(database_url, "0009_ops_1_project_aggregates")
    engine = create_engine(database_url)
    rows = [
        ("projA-12.0-py3-none-any.whl", "2026-12-01 00:00:00"),
        ("projA-12.0-1-py3-none-any.whl", "2026-12-02 00:00:00"),
        ("proja-12.0.0-py3-none-any.whl", "2026-12-03 00:00:00"),  # the newest: stays
        ("proja-12.0-cp312-cp312-linux_x86_64.whl", "2026-12-01 00:00:00"),  # other tags
    ]
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO projects (id, name, display_name, serial, created_at, "
                              "retention_exempt) VALUES (1, 'proja', 'projA', 1, "
                              "CURRENT_TIMESTAMP, false)"))  # fmt: skip
            for filename, at in rows:
                conn.execute(
                    text("INSERT INTO files (project_id, label, filename, version, packagetype, "
                         "sha256, size, uploaded_at, yanked, pinned) VALUES (1, 'main', :f, "
                         "'12.0', 'bdist_wheel', :f, 1, :at, false, false)"),
                    {"f": filename, "at": at},
                )  # fmt: skip
        upgrade(database_url)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
            live = conn.execute(
                text("SELECT filename, version_key, tag_key FROM files "
                     "WHERE removed_at IS NULL ORDER BY filename")
            ).all()  # fmt: skip
            replaced = conn.execute(
                text("SELECT count(*) FROM files WHERE removed_reason = 'replaced'")
            ).scalar_one()
        assert live == [
            ("proja-12.0-cp312-cp312-linux_x86_64.whl", "12", "cp312-cp312-linux_x86_64"),
            ("proja-12.0.0-py3-none-any.whl", "12", "py3-none-any"),
        ]
        assert replaced == 2
    finally:
        engine.dispose()
