"""A small client of the JSON API (``/api/v1``), used by the CLI's remote commands.

The server comes from ``--server`` or ``NIGHTWHEELS_SERVER``, the token from
``NIGHTWHEELS_TOKEN`` (never a command-line argument: those show in process lists).
Errors come back as :class:`RemoteError` carrying the server's message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from nightwheels import __version__
from nightwheels.errors import NightwheelsError

if TYPE_CHECKING:
    import httpx

# httpx is imported where it is used: every command loads this module, few send requests
# (``serve`` would pay 0.1 s for nothing).

API_PREFIX = "/api/v1"
USER_AGENT = f"nightwheels/{__version__}"


class RemoteError(NightwheelsError):
    """The server refused a request; ``code`` and ``status`` are the server's."""

    def __init__(self, message: str, code: str = "error", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ClientConfigError(NightwheelsError):
    """No server or token given, or not a usable one: a usage error (exit 2, as upload)."""

    code = "misconfigured"
    exit_status = 2


def server_from(option: str | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The server's base URL (no trailing slash, no ``/simple`` or ``/legacy``), if given."""
    server = (option or env.get("NIGHTWHEELS_SERVER") or "").strip()
    if not server:
        return None
    server = server.rstrip("/")
    for suffix in ("/legacy", "/simple", API_PREFIX):
        server = server.removesuffix(suffix)
    url = urlsplit(server)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ClientConfigError(f"{server!r} is not an http(s) URL of a nightwheels server")
    return server


def token_from(env: Mapping[str, str] = os.environ) -> str | None:
    token = env.get("NIGHTWHEELS_TOKEN", "").strip()
    return token or None


class ApiClient:
    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        timeout: float = 30,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        self.server = server
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=server + API_PREFIX, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:  # never show the token
        return f"ApiClient(server={self.server!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        import httpx

        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=clean)
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot reach {self.server}: {exc}", "unreachable", 0) from None
        if response.is_success:
            return response.json() if response.content else None
        code, message = "error", response.text.strip()[:300] or response.reason_phrase
        try:
            body = response.json()
            if isinstance(body, dict) and "message" in body:
                code, message = str(body.get("error", code)), str(body["message"])
        except ValueError:
            pass
        if response.status_code == 404 and code == "error":
            message = f"{self.server} has no {API_PREFIX}{path} (is it a nightwheels server?)"
        raise RemoteError(message, code, response.status_code)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)


def client_pin(server: str, *, timeout: float = 30) -> tuple[str, str]:
    """The URL and sha256 of the client wheel ``server`` offers (``/-/client/``)."""
    import httpx

    where = f"{server}/-/client/"
    try:
        response = httpx.get(where, headers={"User-Agent": USER_AGENT}, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RemoteError(
            f"cannot reach {where} to pin the nightwheels client ({exc or type(exc).__name__}): "
            "check --server, and that the server is running",
            "unreachable",
            0,
        ) from None
    try:
        body = response.json() if response.is_success else None
        url, sha256 = str(body["url"]), str(body["sha256"])
    except (ValueError, KeyError, TypeError):
        raise RemoteError(
            f"{where} answered HTTP {response.status_code} without a client to pin: "
            "is it a nightwheels server of version 0.1 or later?",
            "no-client",
            response.status_code,
        ) from None
    return url, sha256
