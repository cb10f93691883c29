"""PEP 792 project status, API version 1.4, and PEP 708 tracks off by default (issue 17.5).

The page rules are checked in-process on the renderers; what installers do is checked on a
live server with pip and uv: archived and deprecated projects install, a quarantined one
does not (no file is listed), and archived and quarantined projects refuse uploads.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from nightwheels.config import Settings
from nightwheels.core.simple_pages import (
    FileEntry,
    ProjectListing,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from tests.support import clients
from tests.support.access import Accounts, Api
from tests.support.backends import SQLITE_ONLY, Backend
from tests.support.server import LiveServer, ServerFactory, wait_for
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ENTRY = FileEntry("demo-1.0-py3-none-any.whl", "x.whl", "ab" * 32, 1, datetime.now(UTC), "1.0")


def test_pep708_tracks_are_off_by_default() -> None:
    assert Settings().pep708_tracks is False


def test_every_page_declares_api_version_1_4() -> None:
    listing = ProjectListing("demo", 1, (ENTRY,))
    assert '<meta name="pypi:repository-version" content="1.4">' in render_index_html([]).decode()
    assert '<meta name="pypi:repository-version" content="1.4">' in (
        render_project_html(listing).decode()
    )
    assert json.loads(render_index_json([]))["meta"]["api-version"] == "1.4"
    assert json.loads(render_project_json(listing))["meta"]["api-version"] == "1.4"


def test_status_is_served_in_html_meta_and_json() -> None:
    active = ProjectListing("demo", 1, (ENTRY,))
    assert "project-status" not in render_project_html(active).decode()
    assert "project-status" not in json.loads(render_project_json(active))
    archived = ProjectListing("demo", 1, (ENTRY,), status="archived", status_reason='moved "x"')
    html = render_project_html(archived).decode()
    assert '<meta name="pypi:project-status" content="archived">' in html
    assert '<meta name="pypi:project-status-reason" content="moved &quot;x&quot;">' in html
    doc = json.loads(render_project_json(archived))
    assert doc["project-status"] == {"status": "archived", "reason": 'moved "x"'}


def _install(server: LiveServer, tool: str, tmp: Path) -> clients.subprocess.CompletedProcess[str]:
    target = tmp / f"{tool}-{uuid.uuid4().hex[:6]}"
    if tool == "pip":
        return clients.pip(
            "install", "--no-deps", "--index-url", server.simple_url, "--target", str(target),
            "demo", check=False,
        )  # fmt: skip
    return clients.uv(
        "pip", "install", "--no-deps", "--index-url", server.simple_url, "--target", str(target),
        "demo", cache=tmp / f"uv-cache-{target.name}", check=False,
    )  # fmt: skip


def _people(server: LiveServer, backend: Backend) -> tuple[str, Api, Api]:
    """Project ``demo``'s upload token, its admin alice's API and a site admin's API."""
    accounts = Accounts(server.data, backend)
    try:
        accounts.user("alice")
        accounts.user("root", admin=True)
        accounts.role("demo", "alice", "admin")
        upload = accounts.token("alice", "demo", permission="upload")
        alice = Api(server, accounts.token("alice", "demo"))
        root = Api(server, accounts.token("root"))
    finally:
        accounts.close()
    return upload, alice, root


@SQLITE_ONLY
def test_status_as_pip_and_uv_see_it(server: LiveServer, backend: Backend, tmp_path: Path) -> None:
    upload, alice, root = _people(server, backend)
    first = make_wheel(tmp_path / "a", "demo", "1.0")
    assert post_wheel(server, upload, first).status_code == 200
    page = f"{server.simple_url}demo/"

    # Archived: installs, says so in both formats, refuses uploads.
    answer = alice.put("/projects/demo/status", {"status": "archived", "reason": "moved to x"})
    assert answer.status_code == 200, answer.text
    assert '<meta name="pypi:project-status" content="archived">' in httpx.get(page).text
    doc = httpx.get(page, headers=JSON).json()
    assert doc["project-status"] == {"status": "archived", "reason": "moved to x"}
    assert doc["meta"]["api-version"] == "1.4"
    for tool in ("pip", "uv"):
        assert _install(server, tool, tmp_path).returncode == 0
    refused = post_wheel(server, upload, make_wheel(tmp_path / "b", "demo", "1.1"))
    assert refused.status_code == 409
    assert "is archived (moved to x) and accepts no uploads" in refused.text
    assert "archived" in httpx.get(f"{server.url}/project/demo/").text

    # Deprecated: as active for uploads and installs.
    assert alice.put("/projects/demo/status", {"status": "deprecated"}).status_code == 200
    assert httpx.get(page, headers=JSON).json()["project-status"] == {"status": "deprecated"}
    assert _install(server, "pip", tmp_path).returncode == 0

    # Quarantined: no file listed, pip and uv find nothing, uploads refused.
    answer = alice.put("/projects/demo/status", {"status": "quarantined", "reason": "malware"})
    assert answer.status_code == 200, answer.text
    doc = httpx.get(page, headers=JSON).json()
    assert doc["files"] == [] and doc["project-status"]["status"] == "quarantined"
    for tool in ("pip", "uv"):
        out = _install(server, tool, tmp_path)
        assert out.returncode != 0, out.stdout
    assert post_wheel(server, upload, make_wheel(tmp_path / "c", "demo", "1.2")).status_code == 409
    assert first.name not in httpx.get(f"{server.url}/project/demo/").text

    # Only a site admin lifts a quarantine; a bad status is a 4xx with the choices.
    lifted = alice.put("/projects/demo/status", {"status": "active"})
    assert lifted.status_code == 403 and "only a site admin" in lifted.json()["message"]
    assert alice.put("/projects/demo/status", {"status": "gone"}).status_code == 422
    assert root.put("/projects/demo/status", {"status": "active"}).status_code == 200
    assert "project-status" not in httpx.get(page, headers=JSON).json()
    assert _install(server, "uv", tmp_path).returncode == 0


@SQLITE_ONLY
def test_outsiders_and_uploaders_cannot_set_a_status(
    server: LiveServer, backend: Backend, uploader: str
) -> None:
    accounts = Accounts(server.data, backend)
    try:
        accounts.user("mallory")
        accounts.user("ulla")
        accounts.role("demo", "ulla", "uploader")
        mallory = Api(server, accounts.token("mallory"))
        ulla = Api(server, accounts.token("ulla", "demo"))
    finally:
        accounts.close()
    for api in (mallory, ulla):
        answer = api.put("/projects/demo/status", {"status": "quarantined"})
        assert answer.status_code == 403, answer.text
    assert Api(server).get("/projects/demo/status").json()["status"] == "active"


@SQLITE_ONLY
def test_cli_sets_and_shows_the_status(server: LiveServer, backend: Backend) -> None:
    accounts = Accounts(server.data, backend)
    try:
        accounts.user("alice")
        accounts.role("demo", "alice", "admin")
        token = accounts.token("alice", "demo")
    finally:
        accounts.close()
    env = clients.clean_env(NIGHTWHEELS_SERVER=server.url, NIGHTWHEELS_TOKEN=token)
    base = [str(clients.BIN / "nightwheels"), "project", "status", "demo"]
    out = clients.run([*base, "--set", "archived", "--reason", "moved"], env=env)
    assert out.stdout.strip() == "demo is archived: moved"
    assert clients.run(base, env=env).stdout.strip() == "demo is archived: moved"
    bad = clients.run([*base, "--set", "gone"], env=env, check=False)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


@SQLITE_ONLY  # the serial poll on PostgreSQL: tests/test_scale_out.py
def test_a_quarantine_set_on_another_server_withholds_file_urls(
    live_server: ServerFactory, backend: Backend, tmp_path: Path
) -> None:
    """Two servers on one database: a quarantine set through A withholds the files on B too,
    whose file lookup had cached them, within the serial poll interval (PEP 792: no file
    offered, by a URL someone kept either); lifting it serves them again, and a yank does
    not withhold (PEP 592)."""
    a = live_server()
    # The same data directory and database; B polls the serial every 0.1 s.
    b = live_server(name="data", env={"NIGHTWHEELS_SERIAL_POLL_INTERVAL": "0.1"})
    upload, alice, root = _people(a, backend)
    wheel = make_wheel(tmp_path / "w", "demo", "1.0")
    assert post_wheel(a, upload, wheel).status_code == 200
    assert wait_for(lambda: httpx.get(f"{b.simple_url}demo/").status_code == 200, timeout=5)
    (entry,) = httpx.get(f"{b.simple_url}demo/", headers=JSON).json()["files"]
    url = str(httpx.URL(f"{b.simple_url}demo/").join(entry["url"]))
    urls = [url, url + ".metadata"]
    for url in urls:  # B has looked the file up and cached where it is
        assert httpx.get(url).status_code == 200
    assert httpx.get(urls[0]).content == wheel.read_bytes()

    set_status = alice.put("/projects/demo/status", {"status": "quarantined", "reason": "malware"})
    assert set_status.status_code == 200, set_status.text
    message = "project 'demo' is quarantined (malware): its files are not offered for download"
    on_a = httpx.get(urls[0].replace(b.url, a.url))
    assert (on_a.status_code, on_a.text.strip()) == (403, message)  # its own change: at once

    def withheld_on_b() -> bool:
        return all(httpx.get(url).status_code == 403 for url in urls)

    assert wait_for(withheld_on_b, timeout=2)
    answer = httpx.get(urls[0], headers={"Accept": "application/json"})
    assert answer.json() == {"error": "project-quarantined", "message": message}
    assert httpx.get(f"{b.simple_url}demo/", headers=JSON).json()["files"] == []

    assert root.put("/projects/demo/status", {"status": "active"}).status_code == 200
    assert wait_for(lambda: httpx.get(urls[0]).status_code == 200, timeout=2)
    yank = a.cli("yank", "demo", "1.0", "--reason", "broken")  # yanked files stay installable
    assert yank.returncode == 0, yank.stderr
    assert wait_for(
        lambda: httpx.get(f"{b.simple_url}demo/", headers=JSON).json()["files"][0]["yanked"],
        timeout=2,
    )
    assert httpx.get(urls[0]).content == wheel.read_bytes()
