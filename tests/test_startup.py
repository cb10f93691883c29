"""Start-up (issue 16.11): a restart on an up-to-date index loads no migration machinery.

The figures are in ``benchmarks/startup.py``; these tests hold the mechanisms in place.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nightwheels.config import Settings
from nightwheels.db.migrate import alembic_config, script_heads, upgrade
from tests.support.clients import clean_env

CHECK = """
import sys
from nightwheels.db.migrate import upgrade_if_behind
ran = upgrade_if_behind(sys.argv[1])
print(ran, "alembic" in sys.modules)
"""


def test_the_head_read_from_the_files_is_alembics() -> None:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert set(script_heads()) == set(heads)


def test_an_up_to_date_database_is_not_migrated_again(tmp_path: Path) -> None:
    url = Settings(data=tmp_path).database
    upgrade(url)
    done = subprocess.run(
        [sys.executable, "-c", CHECK, url], env=clean_env(), capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "False"], done.stderr  # alembic not even imported


def test_a_database_behind_is_migrated(tmp_path: Path) -> None:
    url = Settings(data=tmp_path).database
    upgrade(url, "0001")
    done = subprocess.run(
        [sys.executable, "-c", CHECK, url], env=clean_env(), capture_output=True, text=True
    )
    assert done.stdout.split()[0] == "True", done.stderr


def test_commands_load_no_http_client_they_do_not_use() -> None:
    """The Typer app (what ``serve`` starts with) imports neither httpx nor the upload client."""
    code = "import sys, nightwheels.cli.app; print(sorted(m for m in ('httpx', 'nightwheels.upload.client', 'alembic') if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
