"""``/-/client/``: every server offers the exact client it runs, pinned by sha256 (issue 16.3).

nightwheels is not on PyPI; everything we print or generate installs the client from here.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nightwheels import __version__
from nightwheels.services.client_dist import build_client_wheel
from tests.support import clients
from tests.support.server import LiveServer

WHEEL = f"nightwheels-{__version__}-py3-none-any.whl"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(data=tmp_path_factory.mktemp("client") / "data") as server:
        yield server


def test_the_server_describes_and_serves_its_own_client(live: LiveServer) -> None:
    about = httpx.get(f"{live.url}/-/client/").json()
    assert about["version"] == __version__ and about["filename"] == WHEEL
    assert about["url"] == f"{live.url}/-/client/{WHEEL}"
    data = httpx.get(about["url"]).content
    assert hashlib.sha256(data).hexdigest() == about["sha256"] and len(data) == about["size"]
    requirement = f"nightwheels[nightly] @ {about['url']}#sha256={about['sha256']}"
    assert about["requirement"] == requirement
    assert about["install"] == f'pip install "{requirement}"'
    assert httpx.get(f"{live.url}/-/client/requirement.txt").text == requirement + "\n"

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        info = f"nightwheels-{__version__}.dist-info"
        assert {"nightwheels/cli/main.py", f"{info}/METADATA", f"{info}/RECORD"} <= names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        assert (
            "nightwheels = nightwheels.cli.main:main"
            in archive.read(f"{info}/entry_points.txt").decode()
        )
        assert "Provides-Extra: nightly" in archive.read(f"{info}/METADATA").decode()

    other = httpx.get(
        f"{live.url}/-/client/nightwheels-0.0.1-py3-none-any.whl",
        headers={"Accept": "application/json"},
    )
    assert other.status_code == 404 and WHEEL in other.json()["message"]


def test_the_wheel_is_reproducible() -> None:
    """Same code, same bytes: the sha256 a workflow pins holds across restarts and servers."""
    assert build_client_wheel().sha256 == build_client_wheel().sha256


def test_pip_installs_the_client_from_the_server_and_checks_its_digest(
    live: LiveServer, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    clients.pip(
        "install", "--no-deps", "--no-index", "--target", str(target),
        "-r", f"{live.url}/-/client/requirement.txt",
    )  # fmt: skip
    # The installed copy runs (its dependencies from this venv, the package from the target).
    env = clients.clean_env(PYTHONPATH=str(target))
    code = "import nightwheels; print(nightwheels.__file__)"
    where = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(target)), where.stderr
    version = subprocess.run(
        [sys.executable, "-m", "nightwheels", "--version"], env=env, capture_output=True, text=True
    )
    assert version.stdout.strip() == f"nightwheels {__version__}", version.stderr
    assert (target / f"nightwheels-{__version__}.dist-info" / "entry_points.txt").exists()

    # A wheel that is not the one pinned is refused.
    url = f"{live.url}/-/client/{WHEEL}#sha256={'0' * 64}"
    refused = clients.pip(
        "install", "--no-deps", "--no-index", "--target", str(tmp_path / "other"),
        f"nightwheels @ {url}",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "hash" in refused.stderr.lower()
    assert not os.path.exists(tmp_path / "other" / "nightwheels")


ROOT = Path(__file__).resolve().parent.parent
# ``nightwheels``, ``'nightwheels[nightly]'``, ``nightwheels==0.1``: the name, resolved by an index.
BY_NAME = re.compile(r"""^["']?nightwheels(\[[a-z,]*\])?([=<>~!].*)?["']?$""", re.ASCII)


def install_lines() -> list[tuple[str, str]]:
    texts = [ROOT / "README.md", ROOT / "action.yml", *sorted((ROOT / "docs").glob("*.md"))]
    texts += sorted((ROOT / "src" / "nightwheels").rglob("*.py"))
    texts += sorted((ROOT / "src" / "nightwheels").rglob("*.html"))
    found = []
    for path in texts:
        for line in path.read_text().splitlines():
            if re.search(r"\bpip install\b", line):
                found.append((str(path.relative_to(ROOT)), line))
    return found


def test_nothing_we_print_installs_nightwheels_by_name() -> None:
    """The name is not ours on PyPI: every install line points at a server's /-/client/."""
    offenders = []
    for where, line in install_lines():
        words = line.split("pip install", 1)[1].split(" #")[0].split()
        if any(BY_NAME.match(word) for word in words):
            offenders.append(f"{where}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
