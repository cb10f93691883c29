"""Trusted publishing the PyPI way, at the host root (PEP 807).

What ``pypa/gh-action-pypi-publish`` and twine call, given ``https://<host>/legacy/``:

- ``GET /.well-known/pytp?discover=%2Flegacy%2F``: PEP 807's discovery document;
- ``GET /_/oidc/audience``: ``{"audience": ...}``, the audience to request the OIDC token for;
- ``POST /_/oidc/mint-token`` with ``{"token": <JWT>}``: ``{"token": ..., "expires": ...}``,
  or ``{"errors": [{"code", "description"}]}`` (PyPI's shape, which the action and twine
  print) inside an RFC 9457 problem document (PEP 807's);
- ``POST /_/oidc/burn-token`` with ``{"token": <minted token>}``: invalidates it (uv does
  this once it has uploaded).

The exchange is ``services.trusted_publishing.mint``, the same as
``/api/v1/trusted-publishing/exchange``: one set of publisher rules, two edges.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nightwheels.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NightwheelsError,
    OidcTokenReused,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
)
from nightwheels.server.auth import check_token, client_address
from nightwheels.server.state import app_state
from nightwheels.services import trusted_publishing as tp

__all__ = ["routes"]

PYTP_MEDIA_TYPE = "application/vnd.pypi.pytp.v1+json"
# Upload paths whose trusted publishing this server offers (the discovery key).
UPLOAD_PATHS = frozenset({"/legacy/", "/legacy"})
FEATURES = ["multi-use-token"]  # a minted token uploads until it expires
MAX_BODY = 64 * 1024  # a JWT is at most tp.MAX_OIDC_TOKEN; the rest is JSON framing
_ACCEPTABLE = frozenset(
    {"*/*", "application/*", "application/json", "application/problem+json", PYTP_MEDIA_TYPE}
)

# Our error types as PyPI's mint-token codes (its clients print the code).
_PYPI_CODES: list[tuple[type[NightwheelsError], str]] = [
    (OidcTokenReused, "invalid-reuse-token"),
    (Unauthenticated, "invalid-token"),
    (Forbidden, "invalid-publisher"),
    (Conflict, "invalid-publisher"),
    (InvalidRequest, "invalid-payload"),
    (TooLarge, "invalid-payload"),
    (RateLimited, "rate-limited"),
    (Unavailable, "unavailable"),
]


def _problem(exc: NightwheelsError) -> JSONResponse:
    """RFC 9457 problem details carrying PyPI's ``errors`` list and our ``error``/``message``."""
    code = next((c for kind, c in _PYPI_CODES if isinstance(exc, kind)), exc.code)
    body = {
        "type": "about:blank",
        "title": HTTPStatus(exc.status).phrase,
        "status": exc.status,
        "detail": exc.message,
        "errors": [{"code": code, "description": exc.message}],
        "error": exc.code,
        "message": exc.message,
    }
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(
        body, status_code=exc.status, media_type="application/problem+json", headers=headers
    )


def _not_acceptable(request: Request) -> Response | None:
    """PEP 807: a client that accepts none of our JSON types gets 406."""
    accept = request.headers.get("accept")
    if not accept:
        return None
    ranges = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if ranges & _ACCEPTABLE:
        return None
    return _problem(
        _NotAcceptable(f"this endpoint answers {PYTP_MEDIA_TYPE} (JSON); Accept: {accept[:100]}")
    )


class _NotAcceptable(NightwheelsError):
    code = "not-acceptable"
    status = 406


def _origin(request: Request) -> str:
    """Scheme and host the client used (or the configured public URL's)."""
    services = app_state(request).services
    base = services.settings.base_url or str(request.base_url)
    scheme, _, rest = base.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


async def discover(request: Request) -> Response:
    if (refused := _not_acceptable(request)) is not None:
        return refused
    key = request.query_params.get("discover")
    if key not in UPLOAD_PATHS:
        return JSONResponse(
            {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": f"no trusted publishing for the upload path {key!r}: use /legacy/",
            },
            status_code=404,
            media_type="application/problem+json",
        )
    origin = _origin(request)
    return JSONResponse(
        {
            "audience-endpoint": f"{origin}/_/oidc/audience",
            "token-mint-endpoint": f"{origin}/_/oidc/mint-token",
            "features": FEATURES,
            "default-features": FEATURES,
        },
        media_type=PYTP_MEDIA_TYPE,
    )


async def audience(request: Request) -> Response:
    if (refused := _not_acceptable(request)) is not None:
        return refused
    services = app_state(request).services
    return JSONResponse({"audience": services.settings.oidc_audience})


async def _read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object, refused (413) past :data:`MAX_BODY` while reading."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"the request body is over {MAX_BODY} bytes: send only the OIDC token")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise TooLarge(f"the request body is over {MAX_BODY} bytes: send only the OIDC token")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than a token needs
        raise InvalidRequest('the body is not JSON: send {"token": "<OIDC JWT>"}') from None
    if not isinstance(payload, dict):
        raise InvalidRequest('the body is not a JSON object: send {"token": "<OIDC JWT>"}')
    return payload


def _payload(payload: dict[str, Any]) -> tuple[str, str | None]:
    token = payload.get("token")
    if not isinstance(token, str) or not token:
        raise InvalidRequest('no "token": send {"token": "<OIDC JWT>"}')
    if len(token) > tp.MAX_OIDC_TOKEN:
        raise InvalidRequest(f"the token is over {tp.MAX_OIDC_TOKEN} characters")
    features = payload.get("features", FEATURES)
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidRequest('"features" must be a list of strings')
    unsupported = sorted(set(features) - set(FEATURES))
    if unsupported:
        raise InvalidRequest(
            f"unsupported features {unsupported}: this index mints {FEATURES[0]} tokens"
        )
    project = payload.get("project")
    if project is not None and (not isinstance(project, str) or not 0 < len(project) <= 200):
        raise InvalidRequest('"project" must be a project name')
    return token, project


async def mint_token(request: Request) -> Response:
    if (refused := _not_acceptable(request)) is not None:
        return refused
    services = app_state(request).services
    source = client_address(request)
    try:
        token, project = _payload(await _read_json(request))
        result = await run_in_threadpool(
            check_token,  # under the throttle, as the API's throttled()
            request,
            lambda: tp.mint(services, token, project=project, source=source),
        )
    except NightwheelsError as exc:
        return _problem(exc)
    return JSONResponse(
        {
            "success": True,
            "token": result.token,
            "expires": int(result.expires_at.timestamp()),
            "projects": list(result.projects),
        }
    )


async def burn_token(request: Request) -> Response:
    """``{"token": <minted token>}``: invalidate it now (uv calls this after publishing)."""
    if (refused := _not_acceptable(request)) is not None:
        return refused
    services = app_state(request).services
    source = client_address(request)
    try:
        payload = await _read_json(request)
        token = payload.get("token")
        if not isinstance(token, str) or not token or len(token) > 200:
            raise InvalidRequest('no "token": send {"token": "<the minted token>"}')
        await run_in_threadpool(
            check_token,  # under the throttle, as the API's throttled()
            request,
            lambda: services.db.run_write(lambda s: tp.burn(s, token, source)),
        )
    except NightwheelsError as exc:
        return _problem(exc)
    return JSONResponse({"success": True})


routes = [
    Route("/.well-known/pytp", discover, methods=["GET"]),
    Route("/_/oidc/audience", audience, methods=["GET"]),
    Route("/_/oidc/mint-token", mint_token, methods=["POST"]),
    Route("/_/oidc/burn-token", burn_token, methods=["POST"]),
]
