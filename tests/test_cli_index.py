"""Which index a command acts on: only ``serve`` and ``db upgrade`` create one (issue 16).

Items 2 (admin commands never make a second index), 4 (a token for a new project makes its
user the admin) and 9 (``serve`` fails in one line, before creating anything).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nightwheels.config import Settings
from nightwheels.services.context import Services
from tests.support.cli import nightwheels

ADMIN_COMMANDS = [
    ("user", "create", "alice"),
    ("token", "create", "--user", "alice", "--project", "demo"),
    ("token", "list", "--user", "alice"),
    ("yank", "demo", "1.0"),
    ("prune", "--dry-run"),
    ("audit",),
]


@pytest.mark.parametrize("args", ADMIN_COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_admin_commands_never_create_an_index(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = nightwheels(*args, cwd=tmp_path)
    assert out.returncode == 1, out
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert str((tmp_path / "nightwheels-data").resolve()) in line and "default" in line
    assert "--data" in line and "NIGHTWHEELS_DATA" in line
    assert list(tmp_path.iterdir()) == []


def test_a_missing_index_names_the_setting_that_pointed_there(tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-here"
    out = nightwheels("user", "create", "alice", NIGHTWHEELS_DATA=str(elsewhere))
    assert out.returncode == 1
    assert f"no nightwheels index at {elsewhere} (NIGHTWHEELS_DATA)" in out.stderr
    assert not elsewhere.exists()


def test_token_for_a_new_project_makes_its_user_the_admin(tmp_path: Path) -> None:
    from nightwheels.db.queries import project_by_name
    from nightwheels.services.accounts import get_user
    from nightwheels.services.auth import user_role

    data = str(tmp_path / "data")
    assert nightwheels("db", "upgrade", NIGHTWHEELS_DATA=data).returncode == 0
    for user in ("alice", "bob"):
        assert nightwheels("user", "create", user, NIGHTWHEELS_DATA=data).returncode == 0
        made = nightwheels(
            "token", "create", "--user", user, "--project", "demo", NIGHTWHEELS_DATA=data
        )
        assert made.returncode == 0, made.stderr
    services = Services.from_settings(Settings(data=Path(data)), create=False)
    try:
        with services.db.read() as session:
            project = project_by_name(session, "demo")
            assert project is not None
            roles = {
                name: user_role(session, get_user(session, name).id, project.id)
                for name in ("alice", "bob")
            }
    finally:
        services.close()
    # The project's creator administers it; the next one to get a token uploads to it.
    assert {k: getattr(v, "value", v) for k, v in roles.items()} == {
        "alice": "admin",
        "bob": "uploader",
    }


def test_serve_on_a_busy_port_fails_in_one_line_before_creating_anything(
    tmp_path: Path,
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = nightwheels("serve", "--port", str(port), "--data", str(tmp_path / "d"))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        f"error: port {port} on 127.0.0.1 is in use (another server?): stop it, or pass "
        "--port with a free port"
    )
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("/proc/nightwheels-data", "/proc does not allow new folders"),
        ("file", "is a file, not a folder"),
    ],
)
def test_serve_says_why_a_data_directory_cannot_be_used(
    tmp_path: Path, data: str, says: str
) -> None:
    (tmp_path / "file").write_text("")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    out = nightwheels("serve", "--port", str(port), "--data", str(tmp_path / data))
    assert out.returncode == 1
    line = out.stderr.strip()
    assert len(line.splitlines()) == 1 and says in line and "--data" in line, line


def test_migrate_storage_needs_an_index_to_copy(tmp_path: Path) -> None:
    out = nightwheels("migrate-storage", "--to-data", str(tmp_path / "target"), cwd=tmp_path)
    assert out.returncode == 1 and "no nightwheels index at" in out.stderr
    assert list(tmp_path.iterdir()) == []  # neither an empty source nor a target
