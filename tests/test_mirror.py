"""``nightwheels mirror``: copying another index, from a live nightwheels and a static export.

The source is a real server on loopback (PEP 691 JSON with upload times) or a static
export behind ``http.server`` (PEP 503 HTML only); the target is a data directory, driven
in-process through the service (the CLI entry point is run once, for its summary and exit).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.db.models import File
from nightwheels.db.queries import LIVE
from nightwheels.services import accounts
from nightwheels.services.audit import SYSTEM
from nightwheels.services.context import Services
from nightwheels.services.mirror import mirror
from tests.support.cli import nightwheels
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel
from tests.test_export_static import static_host

JSON = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live nightwheels with demo 1.0.dev1..3 (two tags for dev3, dev1 yanked), other 2.0."""
    root = tmp_path_factory.mktemp("source")
    with LiveServer(data=root / "data") as live:
        live.create_user("alice", admin=True)
        token = live.token("alice", "demo", "other")
        wheels = root / "wheels"
        for version in ("1.0.dev1", "1.0.dev2", "1.0.dev3"):
            answer = post_wheel(live, token, make_wheel(wheels, "demo", version))
            assert answer.status_code == 200, answer.text
        linux = make_wheel(wheels, "demo", "1.0.dev3", "cp311-cp311-manylinux_2_17_x86_64")
        assert post_wheel(live, token, linux).status_code == 200
        assert post_wheel(live, token, make_wheel(wheels, "other", "2.0")).status_code == 200
        live.cli("yank", "demo", "1.0.dev1", "--reason", "broken build")
        yield live


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data=tmp_path / "target")
    services = Services.from_settings(settings)
    upgrade(settings.database)
    with services.db.write() as session:
        accounts.create_user(session, SYSTEM, "mirrorer")
    try:
        yield services
    finally:
        services.close()


def live_files(services: Services) -> dict[str, File]:
    with services.db.read() as session:
        rows = session.execute(select(File).where(LIVE)).scalars().all()
        session.expunge_all()
    return {f.filename: f for f in rows}


def source_files(source: LiveServer, project: str) -> dict[str, dict[str, object]]:
    page = httpx.get(f"{source.simple_url}{project}/", headers={"Accept": JSON}).json()
    return {f["filename"]: f for f in page["files"]}


def test_mirror_copies_every_file_verified_with_upload_times_and_yanks(
    source: LiveServer, target: Services
) -> None:
    report = mirror(target, source.simple_url, [], owner="mirrorer")

    assert report.ok, report.as_dict()
    assert report.projects == ["demo", "other"]
    assert report.count("copied") == 5
    expected = {**source_files(source, "demo"), **source_files(source, "other")}
    copied = live_files(target)
    assert set(copied) == set(expected)
    for filename, theirs in expected.items():
        ours = copied[filename]
        assert ours.sha256 == theirs["hashes"]["sha256"]  # type: ignore[index]
        upload_time = datetime.fromisoformat(str(theirs["upload-time"]).replace("Z", "+00:00"))
        assert ours.uploaded_at.replace(tzinfo=None) == upload_time.replace(tzinfo=None)
        assert bool(ours.yanked) == bool(theirs.get("yanked"))
    assert copied["demo-1.0.dev1-py3-none-any.whl"].yanked_reason == "broken build"
    assert not report.warnings  # the served metadata is the wheel's own


def test_a_second_run_downloads_nothing(source: LiveServer, target: Services) -> None:
    mirror(target, source.simple_url, ["demo"], owner="mirrorer")
    again = mirror(target, source.simple_url, ["demo"], owner="mirrorer")

    assert again.count("copied") == 0
    assert again.count("present") == 4
    assert len(live_files(target)) == 4


def test_newest_versions_only(source: LiveServer, target: Services) -> None:
    report = mirror(target, source.simple_url, ["demo"], owner="mirrorer", versions=2)

    assert sorted(live_files(target)) == [
        "demo-1.0.dev2-py3-none-any.whl",
        "demo-1.0.dev3-cp311-cp311-manylinux_2_17_x86_64.whl",
        "demo-1.0.dev3-py3-none-any.whl",
    ]
    assert report.count("copied") == 3


def test_an_unknown_project_fails_alone(source: LiveServer, target: Services) -> None:
    report = mirror(target, source.simple_url, ["nosuch", "other"], owner="mirrorer")

    assert not report.ok
    failed = [e for e in report.events if e.status == "failed"]
    assert [(e.project, "404" in e.detail) for e in failed] == [("nosuch", True)]
    assert list(live_files(target)) == ["other-2.0-py3-none-any.whl"]


def test_an_unknown_owner_is_refused_before_anything_is_read(
    source: LiveServer, target: Services
) -> None:
    from nightwheels.errors import NotFound

    with pytest.raises(NotFound, match="no user named 'ghost'"):
        mirror(target, source.simple_url, ["demo"], owner="ghost")
    assert live_files(target) == {}


@pytest.fixture
def exported(source: LiveServer, tmp_path: Path) -> Path:
    root = tmp_path / "export"
    source.cli("export-static", str(root))
    return root


def test_from_a_static_export_tampered_bytes_are_refused_then_resumed(
    exported: Path, target: Services
) -> None:
    """HTML only (no upload times); a file whose bytes differ from the listed sha256 is
    refused and recorded nowhere; once it is right again, a re-run copies just that one."""
    (wheel,) = exported.glob("files/*/other-2.0-py3-none-any.whl")
    good = wheel.read_bytes()
    wheel.write_bytes(good[:-10] + b"0123456789")
    with static_host(exported) as url:
        first = mirror(target, f"{url}/simple/", [], owner="mirrorer")
        assert [(e.filename, e.status) for e in first.events if e.status == "failed"] == [
            ("other-2.0-py3-none-any.whl", "failed")
        ]
        assert "sha256 mismatch" in first.events[-1].detail or any(
            "sha256 mismatch" in e.detail for e in first.events
        )
        assert first.count("copied") == 4
        assert "other-2.0-py3-none-any.whl" not in live_files(target)
        assert list((target.settings.tmp_dir).iterdir()) == []  # nothing half-written

        wheel.write_bytes(good)
        second = mirror(target, f"{url}/simple/", [], owner="mirrorer")
    assert second.ok
    assert second.count("copied") == 1
    assert second.count("present") == 4
    assert len(live_files(target)) == 5


def test_cli_prints_one_summary_and_exits_1_on_a_failure(
    source: LiveServer, tmp_path: Path
) -> None:
    data = tmp_path / "cli-target"
    env = {"NIGHTWHEELS_DATA": str(data)}
    nightwheels("db", "upgrade", **env)  # only serve and db upgrade make an index
    nightwheels("admin", "user", "create", "op", **env)
    result = nightwheels("mirror", source.simple_url, "other", "nosuch", "--owner", "op", **env)

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "failed: nosuch:" in result.stderr
    assert result.stdout.strip().startswith("mirrored 2 projects from ")
    assert "1 file copied" in result.stdout
    shutil.rmtree(data)


def test_a_file_with_an_unparseable_name_is_skipped_with_its_project() -> None:
    """The skip event names its project and why, as it is reported (made once, not remade)."""
    from nightwheels.core.simple_index import RemoteFile
    from nightwheels.services.mirror import _newest

    files = [
        RemoteFile("demo-1.0-py3-none-any.whl", "u1", "a" * 64),
        RemoteFile("demo-2.0-py3-none-any.whl", "u2", "b" * 64),
        RemoteFile("not a wheel.whl", "u3", "c" * 64),
    ]
    kept, (skipped,) = _newest("demo", files, 1)
    assert [(r.filename, str(v)) for r, v in kept] == [("demo-2.0-py3-none-any.whl", "2.0")]
    assert (skipped.project, skipped.filename, skipped.status) == (
        "demo", "not a wheel.whl", "skipped",
    )  # fmt: skip
    assert skipped.detail
