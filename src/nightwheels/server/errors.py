"""Mapping errors to HTTP responses: JSON ``{"error", "message"}``, or plain text for uploads."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nightwheels.errors import NightwheelsError, RateLimited, Unauthenticated
from nightwheels.server.middleware import SECURITY_HEADERS

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = 'Basic realm="nightwheels", Bearer realm="nightwheels"'


def _wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "+json" in accept


def error_response(request: Request, exc: NightwheelsError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = "60"
    if _wants_json(request):
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )
    return PlainTextResponse(f"{exc.message}\n", status_code=exc.status, headers=headers)


async def handle_nightwheels_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NightwheelsError)
    return error_response(request, exc)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """The 500 answer. Starlette sends it from its outermost layer, outside
    :class:`SecurityHeaders`, so the headers are added here."""
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    body = {"error": "internal", "message": "internal server error; the request was not applied"}
    response: Response
    if _wants_json(request):
        response = JSONResponse(body, status_code=500)
    else:
        response = PlainTextResponse(body["message"] + "\n", status_code=500)
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response
