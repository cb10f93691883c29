"""`nightwheels upload` with trusted publishing, end to end against the live server.

A loopback stand-in plays the GitHub Actions ID-token endpoint and hands out tokens signed
by a local issuer (tests/support/oidc.py) whose key set the live server trusts; the server's
real exchange endpoint verifies them and mints the upload token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.support.access import Accounts, Api
from tests.support.cli import nightwheels
from tests.support.oidc import Issuer
from tests.support.proxy import FaultProxy
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

VERSION = "0.3.0.dev202611250102"
JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("tp-upload")
    server = LiveServer(data=root / "data", env={"NIGHTWHEELS_OIDC_JWKS_URL": issuer.jwks_url})
    server.data.mkdir()
    server.start()
    people = Accounts(server.data)
    try:
        people.user("owner")
        people.role("octo", "owner", "admin")
        Api(server, people.token("owner", name="setup")).ok(
            "POST",
            "/projects/octo/publishers",
            {"repository": "octo-org/octo-repo", "workflow": "nightly.yml"},
        )
        yield server
    finally:
        people.close()
        server.stop()


def github_stand_in(issuer: Issuer, **claims: str) -> FaultProxy:
    """The Actions ID-token endpoint: checks the request like GitHub, signs like GitHub."""

    def token(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization")
        if auth != "Bearer runtime-request-token":
            return 401, {"message": "bad request token"}
        audience = parse_qs(urlsplit(path).query).get("audience", [""])[0]
        return 200, {"value": issuer.token(audience=audience, **claims)}

    return FaultProxy("http://127.0.0.1:9", routes={"/token": token})


def actions_env(stand_in: FaultProxy, server: LiveServer) -> dict[str, str]:
    return {
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"{stand_in.url}/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runtime-request-token",
        "NIGHTWHEELS_SERVER": server.url,
    }


def files(server: LiveServer, project: str) -> set[str]:
    page = httpx.get(
        f"{server.simple_url}{project}/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    )
    return {f["filename"] for f in page.json()["files"]} if page.status_code == 200 else set()


def test_upload_with_trusted_publishing(live: LiveServer, issuer: Issuer, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "dist", "octo", VERSION)
    with github_stand_in(issuer) as stand_in:
        out = nightwheels("upload", str(tmp_path / "dist"), **actions_env(stand_in, live))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "using a short-lived token from trusted publishing" in out.stdout
    assert "uploaded 1, replaced 0, unchanged 0, failed 0" in out.stdout
    assert files(live, "octo") == {wheel.name}
    assert "nwt_" not in out.stdout + out.stderr  # the minted token is never shown


def test_unregistered_workflow_is_refused_clearly(
    live: LiveServer, issuer: Issuer, tmp_path: Path
) -> None:
    make_wheel(tmp_path / "dist", "octo", VERSION, module_source="X = 2\n")
    with github_stand_in(issuer, repository="mallory/fork") as stand_in:
        out = nightwheels("upload", str(tmp_path / "dist"), **actions_env(stand_in, live))
    assert out.returncode == 2
    assert out.stderr.startswith("error: trusted publishing refused (HTTP 403): "), out.stderr
    assert "no trusted publisher is registered for 'mallory/fork'" in out.stderr
    assert "Traceback" not in out.stderr


def test_no_id_token_permission(live: LiveServer, tmp_path: Path) -> None:
    make_wheel(tmp_path / "dist", "octo", VERSION)
    out = nightwheels(
        "upload",
        str(tmp_path / "dist"),
        CI="true",
        GITHUB_ACTIONS="true",
        NIGHTWHEELS_SERVER=live.url,
    )
    assert out.returncode == 2 and "id-token: write" in out.stderr


def test_report_with_trusted_publishing(live: LiveServer, issuer: Issuer, tmp_path: Path) -> None:
    """`nightwheels report --server` in a job with `id-token: write` and no token secret (the
    weekly workflow `ci init --trusted-publishing` writes): the downstream's registered
    workflow reports its results to the compatibility record."""
    from datetime import UTC, datetime

    from nightwheels.nightly_testing.results import Nightly, Report

    # octo (the registered workflow's project) tested a nightly of its upstream, uplib.
    people = Accounts(live.data)
    try:
        people.user("uplib-owner")
        people.role("uplib", "uplib-owner", "admin")
        upload = people.token("uplib-owner", "uplib", permission="upload")
    finally:
        people.close()
    wheel = make_wheel(tmp_path / "dist", "uplib", "0.4.0.dev202611250102")
    assert post_wheel(live, upload, wheel).status_code == 200
    (entry,) = httpx.get(f"{live.simple_url}uplib/", headers=JSON).json()["files"]
    with github_stand_in(issuer) as stand_in:
        env = actions_env(stand_in, live)
        report = Report(
            project="octo",
            created_at=datetime.now(UTC),
            outcome="passed",
            exit_code=0,
            index_url=live.simple_url,
            stable_index_url="https://pypi.org/simple/",
            python="3.12.1",
            platform="linux-x86_64",
            nightlies=[
                Nightly(
                    name="uplib",
                    version="0.4.0.dev202611250102",
                    filename=wheel.name,
                    url=entry["url"],
                    sha256=entry["hashes"]["sha256"],
                )
            ],
        )
        report.save(tmp_path / "report.json")
        out = nightwheels("report", str(tmp_path / "report.json"), "--server", live.url, **env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"recorded 1 nightlies on {live.url}" in out.stdout
    runs = httpx.get(f"{live.url}/api/v1/compat/downstream/octo").json()["runs"]
    assert [r["outcome"] for r in runs] == ["passed"]
    assert "nwt_" not in out.stdout + out.stderr
    # Neither a token nor an OIDC token: says both ways, exit 2.
    none = nightwheels("report", str(tmp_path / "report.json"), "--server", live.url)
    assert none.returncode == 2 and "id-token: write" in none.stderr
