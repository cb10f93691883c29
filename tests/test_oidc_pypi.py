"""Trusted publishing the PyPI way (issue 17 item 1), end to end on loopback.

The calls are those of pypa/gh-action-pypi-publish's ``oidc-exchange.py``: ``requests`` for
the audience and the mint at ``https://<host>/_/oidc/...`` (a TLS forwarder on loopback with
a test CA), the ``id`` package for the job's OIDC token (served by a stand-in of the Actions
ID-token endpoint that signs with a local issuer the server trusts), then real twine with
``__token__``. uv's own trusted publishing goes through the same endpoints.
PEP 807's discovery document leads to the same two endpoints.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse, urlsplit

import httpx
import id as oidc_id  # the package the action and twine use to get the job's token
import pytest
import requests

from tests.support import clients
from tests.support.access import Accounts, Api, refused
from tests.support.oidc import Issuer
from tests.support.proxy import FaultProxy
from tests.support.server import LiveServer
from tests.support.tls import TlsForwarder
from tests.support.wheels import make_wheel

REPOSITORY = "octo-org/pyproj"
WORKFLOW = "release.yml"
PYTP = "application/vnd.pypi.pytp.v1+json"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    issuer = Issuer().start()
    try:
        yield issuer
    finally:
        issuer.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[LiveServer]:
    with LiveServer(
        data=tmp_path_factory.mktemp("oidc-pypi") / "data",
        env={"NIGHTWHEELS_OIDC_JWKS_URL": issuer.jwks_url},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def tls(live: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsForwarder]:
    """https://127.0.0.1:<port> in front of the server: the action and uv insist on https."""
    with TlsForwarder(int(live.url.rsplit(":", 1)[1]), tmp_path_factory.mktemp("tls")) as tls:
        yield tls


@pytest.fixture(scope="module", autouse=True)
def people(live: LiveServer) -> Iterator[Accounts]:
    """pyproj's admin, who registered the workflow."""
    people = Accounts(live.data)
    try:
        people.user("owner")
        people.role("pyproj", "owner", "admin")
        Api(live, people.token("owner", name="setup")).ok(
            "POST", "/projects/pyproj/publishers", {"repository": REPOSITORY, "workflow": WORKFLOW}
        )
        yield people
    finally:
        people.close()


@pytest.fixture
def github(
    issuer: Issuer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[dict[str, dict[str, object]]]:
    """The Actions ID-token endpoint, and the job's environment pointing at it.

    Yields the claims to put in the next tokens (a test changes them to play another job).
    """
    claims: dict[str, object] = {}

    def token(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, object]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth.lower() != "bearer runtime-request-token":
            return 401, {"message": "bad request token"}
        audience = parse_qs(urlsplit(path).query).get("audience", [""])[0]
        return 200, {"value": issuer.token(REPOSITORY, WORKFLOW, audience=audience, **claims)}

    with FaultProxy("http://127.0.0.1:9", routes={"/token": token}) as stand_in:
        monkeypatch.setenv("GITHUB_ACTIONS", "true")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(request.getfixturevalue("tls").ca))
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"{stand_in.url}/token?api-version=2.0")
        monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-request-token")
        yield {"claims": claims}


def action_exchange(repository_url: str) -> tuple[requests.Response, str]:
    """oidc-exchange.py's requests: the mint answer, and the OIDC token it sent.

    As the script does: https on the upload URL's host (the test CA in REQUESTS_CA_BUNDLE).
    """
    repository_domain = urlparse(repository_url).netloc
    audience_resp = requests.get(f"https://{repository_domain}/_/oidc/audience", timeout=10)
    assert audience_resp.ok, audience_resp.text
    oidc_audience = audience_resp.json()["audience"]
    oidc_token = oidc_id.detect_credential(audience=oidc_audience)
    assert oidc_token is not None
    mint = requests.post(
        f"https://{repository_domain}/_/oidc/mint-token", json={"token": oidc_token}, timeout=10
    )
    return mint, oidc_token


def reasons(mint: requests.Response) -> str:
    """What the action prints for a refused exchange."""
    return "\n".join(
        f"* `{error['code']}`: {error['description']}" for error in mint.json()["errors"]
    )


def test_the_actions_exchange_then_twine(
    live: LiveServer, tls: TlsForwarder, github: dict, tmp_path: Path
) -> None:
    repository_url = f"{tls.url}/legacy/"  # the action's `repository-url` input
    mint, _ = action_exchange(repository_url)
    assert mint.ok, mint.text
    payload = mint.json()
    assert payload["projects"] == ["pyproj"]
    assert 0 < payload["expires"] - time.time() <= 15 * 60
    wheel = make_wheel(tmp_path, "pyproj", "1.0.dev1")
    # The action's default `attestations: true` makes twine send PEP 740 attestations in an
    # `attestations` field: accepted (and not kept) here.
    attestation = wheel.with_name(wheel.name + ".publish.attestation")
    attestation.write_text('{"version": 1, "verification_material": {}, "envelope": {}}')
    clients.run(
        [
            str(clients.BIN / "twine"),
            "upload",
            "--disable-progress-bar",
            "--non-interactive",
            "--attestations",
            "--repository-url",
            repository_url,
            "--cert",
            str(tls.ca),
            "-u",
            "__token__",
            "-p",
            payload["token"],
            str(wheel),
            str(attestation),
        ],
        check=True,
    )
    page = httpx.get(
        f"{live.simple_url}pyproj/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert [f["filename"] for f in page.json()["files"]] == [wheel.name]


def test_refusals_have_the_shape_the_action_prints(
    live: LiveServer, tls: TlsForwarder, github: dict
) -> None:
    github["claims"].update(event_name="pull_request_target")
    mint, token = action_exchange(f"{tls.url}/legacy/")
    assert mint.status_code == 403
    assert mint.headers["content-type"] == "application/problem+json"
    assert reasons(mint).startswith(
        "* `invalid-publisher`: workflows run for 'pull_request_target'"
    )
    assert mint.json()["status"] == 403 and mint.json()["detail"]

    github["claims"].clear()
    first, token = action_exchange(f"{tls.url}/legacy/")
    assert first.ok
    replay = requests.post(f"{live.url}/_/oidc/mint-token", json={"token": token}, timeout=10)
    assert replay.status_code == 401
    assert reasons(replay) == (
        "* `invalid-reuse-token`: this OIDC token was already exchanged: request a new one"
    )

    github["claims"].update(repository_owner_id="1")  # the name re-registered by someone else
    resurrected, _ = action_exchange(f"{tls.url}/legacy/")
    assert resurrected.status_code == 403
    assert "repository_owner_id is '1', not the registered" in reasons(resurrected)


def test_pep_807_discovery_and_exchange(live: LiveServer, issuer: Issuer) -> None:
    headers = {"Accept": PYTP}
    found = httpx.get(
        f"{live.url}/.well-known/pytp", params={"discover": "/legacy/"}, headers=headers
    )
    assert found.status_code == 200 and found.headers["content-type"] == PYTP
    document = found.json()
    assert document == {
        "audience-endpoint": f"{live.url}/_/oidc/audience",
        "token-mint-endpoint": f"{live.url}/_/oidc/mint-token",
        "features": ["multi-use-token"],
        "default-features": ["multi-use-token"],
    }
    audience = httpx.get(document["audience-endpoint"], headers=headers).json()["audience"]
    token = issuer.token(REPOSITORY, WORKFLOW, audience=audience)
    minted = httpx.post(
        document["token-mint-endpoint"],
        json={"token": token, "features": ["multi-use-token"]},
        headers=headers,
    )
    assert minted.status_code == 200, minted.text
    assert minted.json()["expires"] - time.time() > 14 * 60  # PEP 807: at least 15 minutes

    unsupported = httpx.post(
        document["token-mint-endpoint"],
        json={"token": issuer.token(REPOSITORY, WORKFLOW), "features": ["single-use-token"]},
    )
    assert unsupported.status_code == 400
    assert unsupported.json()["errors"][0]["code"] == "invalid-payload"
    assert "single-use-token" in unsupported.json()["detail"]

    missing = httpx.get(f"{live.url}/.well-known/pytp", params={"discover": "/simple/"})
    assert missing.status_code == 404 and "/legacy/" in missing.json()["detail"]
    html = httpx.get(document["audience-endpoint"], headers={"Accept": "text/html"})
    assert html.status_code == 406


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"not json", 400, "not JSON"),
        (b"[" * 60_000, 400, "not JSON"),
        (b"[]", 400, "not a JSON object"),
        (b'{"token": 3}', 400, 'no "token"'),
        (b'{"token": "' + b"a" * 70_000 + b'"}', 413, "over 65536 bytes"),
        (b'{"token": "not.a.jwt"}', 401, "not a JWT"),
    ],
    ids=["garbage", "deep", "array", "token-type", "too-large", "not-a-jwt"],
)
def test_mint_token_bad_input(live: LiveServer, body: bytes, status: int, detail: str) -> None:
    answer = httpx.post(
        f"{live.url}/_/oidc/mint-token",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == status, answer.text
    problem = answer.json()
    assert detail in problem["detail"] and problem["errors"][0]["description"] == problem["detail"]


def test_uv_publish_with_trusted_publishing_then_burns_the_token(
    live: LiveServer, tls: TlsForwarder, people: Accounts, github: dict, tmp_path: Path
) -> None:
    """uv's own trusted publishing (https only, hence the forwarder), then its burn."""
    wheel = make_wheel(tmp_path / "dist", "pyproj", "1.0.dev2")
    env = clients.clean_env(
        GITHUB_ACTIONS="true",
        ACTIONS_ID_TOKEN_REQUEST_URL=os.environ["ACTIONS_ID_TOKEN_REQUEST_URL"],
        ACTIONS_ID_TOKEN_REQUEST_TOKEN=os.environ["ACTIONS_ID_TOKEN_REQUEST_TOKEN"],
        SSL_CERT_FILE=str(tls.ca),
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
    )
    out = subprocess.run(
        [
            *(str(clients.BIN / "uv"), "publish", "--trusted-publishing", "always"),
            *("--publish-url", f"{tls.url}/legacy/", str(wheel)),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Failed to invalidate" not in out.stderr, out.stderr
    minted = re.search(r"::add-mask::(nwt_\S+)", out.stdout + out.stderr)
    assert minted is not None
    refused(Api(live, minted.group(1)).get("/me"), 401, "invalid token")
    page = httpx.get(
        f"{live.simple_url}pyproj/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    assert wheel.name in {f["filename"] for f in page.json()["files"]}
    owner = Api(live, people.token("owner", name="burn-audit"))
    burns = owner.ok("GET", "/audit", project="pyproj", action="token.burn")["events"]
    assert burns and burns[0]["actor"] == f"github:{REPOSITORY}"


def test_burn_token_refusals(live: LiveServer, people: Accounts) -> None:
    url = f"{live.url}/_/oidc/burn-token"
    personal = people.token("owner", name="personal")
    answer = httpx.post(url, json={"token": personal})
    assert answer.status_code == 403 and "nightwheels token revoke" in answer.json()["detail"]
    Api(live, personal).ok("GET", "/me")  # untouched
    answer = httpx.post(url, json={"token": "nwt_000000000000_nope"})
    assert answer.status_code == 401 and answer.json()["errors"][0]["code"] == "invalid-token"
    assert httpx.post(url, json={}).status_code == 400
