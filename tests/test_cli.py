"""The local admin CLI: one line and a non-zero exit for every error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.clients import clean_env


def nw(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nightwheels", *args],
        env=clean_env(NIGHTWHEELS_DATA=str(data)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_user_and_token_errors_are_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert nw(data, "user", "create", "alice").returncode == 0
    dup = nw(data, "user", "create", "alice")
    assert dup.returncode == 1
    assert dup.stderr == "error: a user named 'alice' already exists\n"

    missing = nw(data, "token", "create", "--user", "nobody", "--project", "demo")
    assert missing.returncode == 1
    assert missing.stderr == "error: no user named 'nobody'\n"

    bad = nw(data, "token", "create", "--user", "alice", "--project", "-bad-")
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: '-bad-' is not a valid project name")
    assert "Traceback" not in bad.stderr

    revoke = nw(data, "token", "revoke", "000000000000")
    assert revoke.returncode == 1 and revoke.stderr.count("\n") == 1


def test_token_is_printed_once_and_stored_hashed(tmp_path: Path) -> None:
    import sqlite3

    data = tmp_path / "data"
    nw(data, "user", "create", "alice")
    out = nw(data, "token", "create", "--user", "alice", "--project", "demo", "--expires", "30d")
    assert out.returncode == 0
    token = out.stdout.strip()
    assert token.startswith("nwt_")
    assert "not shown again" in out.stderr
    db = sqlite3.connect(data / "nightwheels.db")
    rows = db.execute("SELECT prefix, digest, expires_at FROM tokens").fetchall()
    dumped = "\n".join(db.iterdump())
    assert token not in dumped
    assert token.split("_")[2] not in dumped
    assert rows[0][0] == token.split("_")[1] and len(rows[0][1]) == 64 and rows[0][2] is not None


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert nw(data, "db", "upgrade").returncode == 0
    again = nw(data, "db", "upgrade")
    assert again.returncode == 0 and "up to date" in again.stdout
    assert (data / "nightwheels.db").is_file()


def test_bad_duration(tmp_path: Path) -> None:
    out = nw(
        tmp_path / "d", "token", "create", "--user", "a", "--project", "p", "--expires", "soon"
    )
    assert out.returncode == 2
    assert "not a duration" in out.stderr


def test_bad_setting_is_one_line(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nightwheels", "db", "upgrade"],
        env=clean_env(NIGHTWHEELS_DATA=str(tmp_path / "d"), NIGHTWHEELS_ALLOW_REPLACE="maybe"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: invalid setting NIGHTWHEELS_ALLOW_REPLACE='maybe'")
    assert out.stderr.count("\n") == 1


def test_client_commands_do_not_load_the_database_layer() -> None:
    """``nightwheels upload`` runs once per CI job: it must not pay for the server's imports."""
    code = (
        "import sys\n"
        "from nightwheels.cli import main, upload\n"
        "heavy = {'sqlalchemy', 'pydantic', 'pydantic_settings', 'uvicorn', 'starlette'}\n"
        "print(sorted(heavy & sys.modules.keys()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
