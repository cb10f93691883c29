"""The one error mapper of the server, installed on the site and on its /api/v1 mount.

Every error becomes ``{"error": code, "message": sentence}`` (JSON under /api/ or when the
client asks for JSON, else the sentence as plain text, which twine prints):

- :class:`NightwheelsError`: its status; 401 carries ``WWW-Authenticate`` (Basic for twine
  and pip, Bearer for the API), 429 and 503 carry ``Retry-After`` with the seconds the
  message names;
- a database failure: 507 for a full disk, 503 with ``Retry-After`` when it is unreachable
  (logged once per outage, then at a limited rate; see :class:`OutageLog`);
- malformed API parameters: 422 with the first problems;
- anything else: 500 that says nothing internal.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from nightwheels.db.failures import DATABASE_OUTAGE, RETRY_AFTER, database_error
from nightwheels.errors import NightwheelsError, Unauthenticated
from nightwheels.server.middleware import SECURITY_HEADERS
from nightwheels.server.protocol import REASON_HEADER

log = logging.getLogger(__name__)

WWW_AUTHENTICATE = 'Basic realm="nightwheels", Bearer realm="nightwheels"'
_ANSWERED = "_nightwheels_answered"  # set on an exception once a 500 was logged and sent


def _wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept or "+json" in accept


def reason_phrase(message: str) -> str:
    """``message`` as an HTTP reason phrase: printable ASCII on one line, at most 300 chars."""
    return re.sub(r"[^\x20-\x7e]+", " ", message).strip()[:300] or "error"


def error_response(request: Request, exc: NightwheelsError) -> Response:
    headers: dict[str, str] = {}
    if request.url.path.startswith("/legacy/"):
        # twine prints the status line, not the body: the message goes in its reason
        # phrase, as Warehouse does (server.protocol moves it there).
        headers[REASON_HEADER] = reason_phrase(exc.message)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    retry_after = exc.retry_after
    if retry_after is None and exc.status == 503:  # an object store or OIDC key set outage
        retry_after = RETRY_AFTER
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if _wants_json(request):
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )
    return PlainTextResponse(f"{exc.message}\n", status_code=exc.status, headers=headers)


async def handle_nightwheels_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NightwheelsError)
    return error_response(request, exc)


async def handle_database_error(request: Request, exc: Exception) -> Response:
    known = database_error(exc)
    if known is None:
        return await handle_unexpected(request, exc)
    DATABASE_OUTAGE.failed(exc)
    return error_response(request, known)


async def handle_invalid(request: Request, exc: Exception) -> Response:
    from fastapi.exceptions import RequestValidationError

    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
        for err in exc.errors()[:5]
    )
    return JSONResponse(
        {"error": "invalid-request", "message": f"invalid request: {problems}"}, status_code=422
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """The 500 answer. Starlette sends it from its outermost layer, outside
    :class:`SecurityHeaders`, so the headers are added here."""
    if not getattr(exc, _ANSWERED, False):  # the /api/v1 mount answered and re-raised it
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        with contextlib.suppress(AttributeError):
            setattr(exc, _ANSWERED, True)
    body = {"error": "internal", "message": "internal server error; the request was not applied"}
    response: Response
    if _wants_json(request):
        response = JSONResponse(body, status_code=500)
    else:
        response = PlainTextResponse(body["message"] + "\n", status_code=500)
    for name, value in SECURITY_HEADERS:
        response.headers[name.decode()] = value.decode()
    return response


def install(app: Starlette) -> None:
    """Map errors on ``app`` (the site, and the mounted API, which has its own handlers).

    Only FastAPI raises ``RequestValidationError``: the site does not import FastAPI for it
    (the API is built on its first request, see ``server.app``).
    """
    app.add_exception_handler(NightwheelsError, handle_nightwheels_error)
    app.add_exception_handler(DBAPIError, handle_database_error)
    app.add_exception_handler(PoolTimeout, handle_database_error)
    if "fastapi" in sys.modules:
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError

        if isinstance(app, FastAPI):
            app.add_exception_handler(RequestValidationError, handle_invalid)
    app.add_exception_handler(Exception, handle_unexpected)
