"""twine shows the server's reason for a refused upload (issue 16.6).

twine prints the status line of a refused upload and the body only with ``--verbose``:
the message goes in the reason phrase, as Warehouse does.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clients
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(data=tmp_path_factory.mktemp("reason") / "data") as server:
        server.create_user("alice")
        yield server


def test_twine_prints_the_servers_reason(live: LiveServer, tmp_path: Path) -> None:
    token = live.token("alice", "mine")
    wheel = make_wheel(tmp_path / "dist", "theirs", "1.0.dev1")
    out = clients.twine_upload(live.upload_url, token, wheel, check=False)
    assert out.returncode != 0
    shown = out.stdout + out.stderr
    assert "HTTPError: 403" in shown and "--verbose" in shown  # no --verbose given
    # twine prints the reason phrase under the status when it is not the standard one.
    assert "may not upload to 'theirs' (it is scoped to: mine)" in shown, shown


def test_the_reason_is_one_safe_line_and_no_header(live: LiveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        connection.request("POST", "/legacy/", body=b"x", headers={"Content-Type": "text/plain"})
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status >= 400
    assert response.reason == body.strip().splitlines()[0][:300]
    assert response.reason.isascii() and response.reason.isprintable()
    assert response.getheader("x-nightwheels-reason") is None


def test_other_answers_keep_their_standard_reason(live: LiveServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    try:
        connection.request("GET", "/simple/no-such-project/")
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert (response.status, response.reason) == (404, "Not Found")
