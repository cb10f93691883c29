"""The local admin CLI: one line and a non-zero exit for every error."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support.cli import Outcome, nightwheels
from tests.support.clients import clean_env


def nw(data: Path, *args: str) -> Outcome:
    """The local admin CLI on ``data``, in-process (the entry point: test_bad_setting_...).

    The index is made first when missing: only ``serve`` and ``db upgrade`` make one.
    """
    if data.is_absolute() and not (data / "nightwheels.db").exists():
        from nightwheels.config import Settings
        from nightwheels.db.migrate import upgrade

        data.mkdir(parents=True, exist_ok=True)
        upgrade(Settings(data=data).database)
    return nightwheels(*args, NIGHTWHEELS_DATA=str(data))


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
    assert token.split("_", 2)[2] not in dumped
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


# Never imported by `nightwheels upload` (it runs in every nightly CI job).
NOT_ON_THE_UPLOAD_PATH = (
    "typer",
    "click",
    "pydantic",
    "sqlalchemy",
    "starlette",
    "rich",
    "httpx",
    "python_multipart",
)


def imported_modules(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime ARGS``: the process, and the top-level modules it imported."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in out.stderr.splitlines()
        if line.startswith("import time:")
    }
    return out, names


def test_upload_imports_no_cli_framework_nor_server() -> None:
    """CI runs `nightwheels upload` every night: argparse, no typer app, no rich without a bar."""
    out, imported = imported_modules(
        "-m",
        "nightwheels",
        "upload",
        "/nonexistent",
        NIGHTWHEELS_SERVER="http://127.0.0.1:9",
        NIGHTWHEELS_TOKEN="nwt_x_y",
    )
    assert out.returncode == 2
    assert "error: /nonexistent does not exist" in out.stderr  # got as far as the upload
    assert "nightwheels" in imported
    assert sorted(imported & set(NOT_ON_THE_UPLOAD_PATH)) == []


# Never imported by `nightwheels test` and `nightwheels report` (every nightly test job,
# measured against doing it by hand in benchmarks/nightly_testing.py).
NOT_ON_THE_NIGHTLY_TEST_PATH = (
    *NOT_ON_THE_UPLOAD_PATH,
    "fastapi",
    "uvicorn",
    "alembic",
    "jinja2",
    "jwt",
    "boto3",
    "pydantic_settings",
)


def test_nightly_test_and_report_import_no_cli_framework_nor_server(tmp_path: Path) -> None:
    """`test` up to reading the index and writing its report, then `report`: argparse only."""
    from tests.support.server import free_port

    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "project"\nversion = "1"\ndependencies = ["comet"]\n'
    )
    closed = f"http://127.0.0.1:{free_port()}/simple/"
    saved, markdown = tmp_path / "report.json", tmp_path / "report.md"
    out, imported = imported_modules(
        "-m", "nightwheels", "test", str(project), "--index", closed, "--stable-index", closed,
        "--save", str(saved), "--markdown", str(markdown),
        UV_CACHE_DIR=str(tmp_path / "uv"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
    )  # fmt: skip
    assert out.returncode == 3, out.stderr  # the index cannot be read: could not install
    assert "cannot read" in out.stderr and saved.is_file() and markdown.is_file()
    assert {"nightwheels", "packaging"} <= imported
    assert sorted(imported & set(NOT_ON_THE_NIGHTLY_TEST_PATH)) == []

    out, imported = imported_modules(
        "-m", "nightwheels", "report", str(tmp_path / "missing.json"),
        "--markdown", str(tmp_path / "issue.md"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "issue.md").is_file()  # went as far as rendering it
    assert sorted(imported & set(NOT_ON_THE_NIGHTLY_TEST_PATH)) == []


def test_a_test_run_stopped_by_its_options_leaves_nothing_behind(tmp_path: Path) -> None:
    """The first environment is started before the options are checked: it is removed."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "project"\nversion = "1"\n')
    temp = tmp_path / "temp"
    temp.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "nightwheels", "test", str(project), "--extra", "nope",
         "--index", "http://127.0.0.1:9/simple/"],
        env=clean_env(TMPDIR=str(temp), UV_CACHE_DIR=str(tmp_path / "uv")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "no extra 'nope'" in out.stderr, out.stderr
    assert list(temp.iterdir()) == []


def test_upload_usage() -> None:
    bad = nw(Path("unused"), "upload", "--jobs", "0")
    assert bad.returncode == 2
    assert bad.stderr == "error: argument --jobs/-j: 0 is not in the range 1<=x<=64\n"
    for args in (["--retries", "21"], ["--backoff", "-1"], ["--timeout", "0"], ["--nope"]):
        out = nw(Path("unused"), "upload", *args)
        assert out.returncode == 2 and out.stderr.startswith("error: "), args
        assert out.stderr.count("\n") == 1, out.stderr

    usage = nw(Path("unused"), "upload", "--help")
    assert usage.returncode == 0
    assert "Usage: nightwheels upload [OPTIONS] [PATH]" in usage.stdout  # as every command
    assert "Upload every wheel in PATH" in usage.stdout and "--jobs" in usage.stdout

    # The Typer app still lists it, and passes its arguments through unparsed.
    app = subprocess.run(
        [sys.executable, "-m", "nightwheels", "--help"],
        env=clean_env(COLUMNS="200"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert app.returncode == 0
    assert re.search(r"upload +Upload every wheel in PATH \(default dist/\)", app.stdout)


def test_upload_through_the_typer_app() -> None:
    """In-process runs of the app (the tests' `nightwheels(...)`) reach the same parser."""
    from tests.support.cli import nightwheels

    assert "Usage: nightwheels upload [OPTIONS] [PATH]" in nightwheels("upload", "--help").stdout
    bad = nightwheels("upload", "-j", "65")
    assert (bad.returncode, bad.stderr) == (
        2,
        "error: argument --jobs/-j: 65 is not in the range 1<=x<=64\n",
    )
    missing = nightwheels(
        "upload", "/nonexistent", NIGHTWHEELS_SERVER="http://127.0.0.1:9", NIGHTWHEELS_TOKEN="t"
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr
