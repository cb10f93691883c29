"""Credentials from HTTP requests (the throttle of failed attempts: services/throttle.py)."""

from __future__ import annotations

import base64
import binascii

from starlette.requests import Request

from nightwheels.errors import Unauthenticated


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def token_from_request(request: Request) -> str | None:
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
