"""The shared vocabulary: one unit of work for a change, one size format, one set of codes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from nightwheels.cli import exits
from nightwheels.core.permissions import TOKEN_PERMISSIONS, Permission
from nightwheels.core.sizes import format_size
from nightwheels.db.models import File, Project
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.nightly_testing.results import EXIT_CODES, EXIT_NO_NIGHTLIES
from nightwheels.services import serials
from nightwheels.services.context import Services
from tests.support.seed import add_file, open_services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    s = open_services(tmp_path / "data")
    yield s
    s.close()


def test_a_change_is_announced_once_after_its_commit(services: Services) -> None:
    add_file(services, "demo", "1.0")
    heard: list[tuple[str, int, bool]] = []

    def listener(name: str, serial: int) -> None:
        with services.db.read() as session:  # the change is visible when it is announced
            committed = project_by_name(session, name)
            assert committed is not None
            heard.append((name, serial, committed.serial == serial))

    services.listeners.append(listener)
    attempts = []

    def change(session: Session, changes: serials.Changes) -> str:
        attempts.append(1)
        project = project_by_name(session, "demo")
        assert project is not None
        changes.bump(project)
        if len(attempts) == 1:  # the first attempt meets a busy database and is retried
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return project.name

    assert serials.write(services, change) == "demo"
    assert len(attempts) == 2
    assert len(heard) == 1 and heard[0][0] == "demo" and heard[0][2]


def test_a_failed_change_announces_nothing(services: Services) -> None:
    add_file(services, "demo", "1.0")
    with services.db.read() as session:
        before = serials.current(session)
    heard: list[str] = []
    services.listeners.append(lambda name, serial: heard.append(name))

    def change(session: Session, changes: serials.Changes) -> None:
        project = project_by_name(session, "demo")
        assert project is not None
        changes.bump(project)
        raise ValueError("refused after the bump")

    with pytest.raises(ValueError):
        serials.write(services, change)
    assert heard == []
    with services.db.read() as session:
        project = project_by_name(session, "demo")
        assert project is not None and project.serial <= before == serials.current(session)


def test_live_and_project_by_name(services: Services) -> None:
    add_file(services, "demo", "1.0")
    add_file(services, "demo", "0.9", removed_days_ago=1, removed_reason="pruned")
    with services.db.read() as session:
        project = project_by_name(session, "demo")
        assert project is not None and project_by_name(session, "Demo") is None  # normalised
        live = session.query(File.version).filter(File.project_id == project.id, LIVE).all()
        assert [v for (v,) in live] == ["1.0"]
        assert session.get(Project, project.id) is project


def test_sizes_in_one_unit_system() -> None:
    sizes = (0, 1023, 1024, 1536, 12_345, 2 * 1024**2, 2 * 1024**3, 5 * 1024**4)
    assert [format_size(n) for n in sizes] == [
        "0 B",
        "1023 B",
        "1 KiB",
        "1.5 KiB",
        "12.1 KiB",
        "2 MiB",
        "2 GiB",
        "5 TiB",
    ]
    assert format_size(None) == "-" and format_size(None, missing="") == ""


def test_codes_are_defined_once() -> None:
    assert {p.value for p in Permission} == TOKEN_PERMISSIONS
    assert EXIT_CODES == {
        "passed": exits.EXIT_OK,
        "failed": exits.EXIT_ERROR,
        "install-error": exits.EXIT_INSTALL,
        "could-not-run": exits.EXIT_COULD_NOT_RUN,
    }
    assert EXIT_NO_NIGHTLIES == exits.EXIT_NO_NIGHTLIES


def test_the_live_file_phrase_is_written_once() -> None:
    """Services and edges say ``LIVE`` (db/queries.py); migrations keep their own copy."""
    root = Path(serials.__file__).parents[1]
    spelled = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "removed_at.is_(None)" in path.read_text()
        and path.parent.name != "versions"
        and path.name != "queries.py"
    ]
    assert spelled == []
