"""Where the upload goes and with what token: options, environment, or trusted publishing.

Trusted publishing (inside GitHub Actions with ``permissions: id-token: write``): the job
asks the Actions runtime for an OIDC token with audience ``nightwheels`` and exchanges it at
the server for a short-lived upload token scoped to the project(s) registered for this
repository and workflow. No long-lived secret is stored in the repository.

Standard library only: ``nightwheels upload`` runs in every nightly CI job and must start
fast, so the two requests of trusted publishing load ``urllib.request`` only when made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from nightwheels import __version__
from nightwheels.errors import Misconfigured, TrustedPublishingFailed

if TYPE_CHECKING:
    from urllib.request import OpenerDirector

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


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)  # ValueError if it is not JSON

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Unreachable(Exception):
    """No answer: the request could not be sent, or the connection broke."""


def _opener() -> OpenerDirector:
    """urllib with the environment's proxies and the system's certificates; no redirects."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # the 3xx itself is the answer: never follow a token elsewhere

    return urllib.request.build_opener(NoRedirect)


def _request(
    url: str, headers: dict[str, str], timeout: float, json_body: object = None
) -> _Response:
    """GET ``url`` (POST, with ``json_body``): the answer, whatever its status."""
    import http.client
    import urllib.request
    from urllib.error import HTTPError, URLError

    if not is_http_url(url):  # urllib would also open file: and ftp: URLs
        raise _Unreachable(f"{url!r} is not an http(s) URL")
    data = None if json_body is None else json.dumps(json_body).encode()
    if data is not None:
        headers = headers | {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 (checked)
    try:
        with _opener().open(request, timeout=timeout) as response:
            return _Response(response.status, response.reason, response.read())
    except HTTPError as exc:  # a status other than 2xx: an answer all the same
        with exc:
            return _Response(exc.code, str(exc.reason), exc.read())
    except URLError as exc:
        raise _Unreachable(str(exc.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _Unreachable(str(exc) or type(exc).__name__) from None


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
    except _Unreachable as exc:
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


def _error_message(response: _Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    return response.text.strip()[:300] or response.reason


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
    except _Unreachable as exc:
        raise TrustedPublishingFailed(f"cannot reach {server}: {exc}") from None
    if response.status in (404, 405):
        raise TrustedPublishingFailed(
            f"{server} does not offer trusted publishing (HTTP {response.status}): "
            "use a token in NIGHTWHEELS_TOKEN instead"
        )
    if response.status != 200:
        raise TrustedPublishingFailed(
            f"trusted publishing refused (HTTP {response.status}): {_error_message(response)}"
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
