"""Where the upload goes and with what token: options, environment, or trusted publishing.

Trusted publishing (inside GitHub Actions with ``permissions: id-token: write``): the job
asks the Actions runtime for an OIDC token with audience ``nightwheels`` and exchanges it at
the server for a short-lived upload token scoped to the project(s) registered for this
repository and workflow. No long-lived secret is stored in the repository.

Standard library only (``upload.http``): ``nightwheels upload`` runs in every nightly CI
job and must start fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from nightwheels import __version__
from nightwheels.errors import Misconfigured, TrustedPublishingFailed
from nightwheels.upload.http import Response, TransportError, fetch, message

AUDIENCE = "nightwheels"
EXCHANGE_PATH = "/api/v1/trusted-publishing/exchange"
USER_AGENT = f"nightwheels/{__version__}"


@dataclass(frozen=True)
class Credentials:
    server: str  # base URL, no trailing slash
    token: str
    how: str  # "option", "NIGHTWHEELS_TOKEN", "trusted publishing"

    def __repr__(self) -> str:  # never show the token in a traceback or log
        return f"Credentials(server={self.server!r}, how={self.how!r})"


def is_http_url(url: str) -> bool:
    """An http(s) URL with a host (and, if any, a valid port)."""
    try:
        parsed = urlsplit(url)
        _ = parsed.port  # ValueError unless a number in 0..65535
    except ValueError:  # that, or an unbalanced IPv6 bracket
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and url.isprintable()


def normalize_server(url: str) -> str:
    url = url.strip().rstrip("/")
    for suffix in ("/legacy", "/simple"):
        url = url.removesuffix(suffix)
    if not is_http_url(url):
        raise Misconfigured(f"{url!r} is not an http(s) URL of a nightwheels server")
    return url


def is_cleartext_remote(server: str) -> bool:
    """Plain http to a host other than this machine: the token would cross the network in clear."""
    url = urlsplit(server)
    return url.scheme == "http" and url.hostname not in ("127.0.0.1", "localhost", "::1")


def resolve_server(option: str | None, env: Mapping[str, str] = os.environ) -> str:
    server = option or env.get("NIGHTWHEELS_SERVER")
    if not server:
        raise Misconfigured(
            "no server given: pass --server URL or set NIGHTWHEELS_SERVER "
            "(refusing to guess where to upload, to prevent accidental uploads)"
        )
    return normalize_server(server)


def in_github_actions(env: Mapping[str, str]) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def _request(
    url: str, headers: dict[str, str], timeout: float, json_body: object = None
) -> Response:
    """GET ``url`` (POST, with ``json_body``): the answer, whatever its status."""
    if json_body is None:
        return fetch(url, headers, timeout=timeout)
    headers = headers | {"Content-Type": "application/json"}
    return fetch(url, headers, timeout=timeout, method="POST", body=json.dumps(json_body).encode())


def github_oidc_token(
    env: Mapping[str, str] = os.environ, audience: str = AUDIENCE, timeout: float = 30
) -> str:
    """Ask the GitHub Actions runtime for an OIDC token (JWT) for ``audience``."""
    url = env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    request_token = env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not request_token:
        raise TrustedPublishingFailed(
            "no OIDC token available: give the job `permissions: id-token: write` "
            "(GitHub does not provide one to pull requests from forks)"
        )
    # As GitHub's own toolkit does: the URL comes with a query (api-version) already.
    url += ("&" if urlsplit(url).query else "?") + urlencode({"audience": audience})
    try:
        response = _request(
            url,
            {"Authorization": f"Bearer {request_token}", "User-Agent": USER_AGENT},
            timeout,
        )
    except TransportError as exc:
        raise TrustedPublishingFailed(f"cannot reach the GitHub OIDC endpoint: {exc}") from None
    if response.status != 200:
        raise TrustedPublishingFailed(f"the GitHub OIDC endpoint answered HTTP {response.status}")
    try:
        value = response.json()["value"]  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        raise TrustedPublishingFailed("the GitHub OIDC endpoint sent no token") from None
    if not isinstance(value, str) or not value:
        raise TrustedPublishingFailed("the GitHub OIDC endpoint sent an empty token")
    return value


def exchange_oidc_token(
    server: str, oidc_token: str, project: str | None = None, timeout: float = 30
) -> str:
    """Exchange a CI OIDC token for a short-lived nightwheels upload token.

    ``project`` is needed only when the workflow is a trusted publisher of several projects.
    """
    body = {"token": oidc_token} | ({"project": project} if project else {})
    try:
        response = _request(
            server + EXCHANGE_PATH,
            {"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout,
            json_body=body,
        )
    except TransportError as exc:
        raise TrustedPublishingFailed(f"cannot reach {server}: {exc}") from None
    if response.status in (404, 405):
        raise TrustedPublishingFailed(
            f"{server} does not offer trusted publishing (HTTP {response.status}): "
            "use a token in NIGHTWHEELS_TOKEN instead"
        )
    if response.status != 200:
        raise TrustedPublishingFailed(
            f"trusted publishing refused (HTTP {response.status}): {message(response)}"
        )
    try:
        token = response.json()["token"]  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        raise TrustedPublishingFailed("the server's exchange answer has no token") from None
    if not isinstance(token, str) or not token:
        raise TrustedPublishingFailed("the server's exchange answer has an empty token")
    return token


def trusted_publishing_token(
    server: str, env: Mapping[str, str] = os.environ, project: str | None = None
) -> str:
    return exchange_oidc_token(server, github_oidc_token(env), project)


def resolve(
    server_option: str | None,
    token_option: str | None,
    env: Mapping[str, str] = os.environ,
    project: str | None = None,
) -> Credentials:
    """Server and token, in order: options, environment, trusted publishing; else refuse."""
    server = resolve_server(server_option, env)
    if token_option:
        return Credentials(server, token_option.strip(), "option")
    if env.get("NIGHTWHEELS_TOKEN", "").strip():
        return Credentials(server, env["NIGHTWHEELS_TOKEN"].strip(), "NIGHTWHEELS_TOKEN")
    if env.get("ACTIONS_ID_TOKEN_REQUEST_URL"):
        token = trusted_publishing_token(server, env, project)
        return Credentials(server, token, "trusted publishing")
    hint = (
        " or give this GitHub Actions job `permissions: id-token: write` for trusted publishing"
        if in_github_actions(env)
        else ""
    )
    raise Misconfigured(
        f"no token given: pass --token or set NIGHTWHEELS_TOKEN (from a CI secret){hint}"
    )
