"""Credentials from HTTP requests, checked under the one throttle (services/throttle.py).

Every edge authenticates through these three functions: :func:`authenticate` (a token in
``Authorization``), :func:`check_password` and :func:`check_token` (an OIDC token). They
block on the database: call them from a worker thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

from starlette.requests import HTTPConnection

from nightwheels.errors import Unauthenticated
from nightwheels.server.state import app_state
from nightwheels.services.auth import Principal, authenticate_token

T = TypeVar("T")
_PRINCIPAL = "nightwheels.principal"  # the scope key caching a request's principal


def client_address(request: HTTPConnection) -> str | None:
    return request.client.host if request.client else None


def authenticate(request: HTTPConnection) -> Principal | None:
    """The principal of the token the request carries, ``None`` without credentials.

    Raises :class:`Unauthenticated` for bad credentials, ``RateLimited`` when they come from
    an address with too many failures; a valid token always passes. Cached per request.
    """
    if _PRINCIPAL in request.scope:
        cached: Principal | None = request.scope[_PRINCIPAL]
        return cached
    state = app_state(request)
    source = client_address(request)

    def check() -> Principal | None:
        token = token_from_request(request)
        return None if token is None else authenticate_token(state.services.db, token, source)

    principal = state.throttle.token(source, check)
    request.scope[_PRINCIPAL] = principal
    return principal


def check_password(request: HTTPConnection, account: str, check: Callable[[], T]) -> T:
    """Run a password check for ``account``, limited per address and per account."""
    return app_state(request).throttle.password(client_address(request), account, check)


def check_token(request: HTTPConnection, check: Callable[[], T]) -> T:
    """Run another token check (trusted publishing's OIDC token) under the throttle."""
    return app_state(request).throttle.token(client_address(request), check)


def token_from_request(request: HTTPConnection) -> str | None:
    """The token in ``Authorization: Basic __token__:<token>`` (twine, uv) or ``Bearer``."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthenticated("malformed Basic credentials") from None
        _user, sep, password = decoded.partition(":")
        if not sep or not password:
            raise Unauthenticated(
                "no password given: use __token__ as user and a token as password"
            )
        return password
    raise Unauthenticated(f"unsupported authorization scheme {scheme!r}: use Basic or Bearer")
