"""Credentials from HTTP requests, and throttling of failed attempts per source address."""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections import deque

from starlette.requests import Request

from nightwheels.errors import RateLimited, Unauthenticated


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


class FailureThrottle:
    """At most ``limit`` failed authentications per source in a sliding minute."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, source: str, now: float) -> deque[float]:
        entries = self._failures.setdefault(source, deque())
        while entries and now - entries[0] > self.window:
            entries.popleft()
        return entries

    def check(self, source: str | None) -> None:
        if source is None:
            return
        with self._lock:
            entries = self._recent(source, time.monotonic())
            if len(entries) >= self.limit:
                retry = int(self.window - (time.monotonic() - entries[0])) + 1
                raise RateLimited(
                    f"too many failed authentication attempts from {source}; retry in {retry} s"
                )

    def failed(self, source: str | None) -> None:
        if source is None:
            return
        with self._lock:
            self._recent(source, time.monotonic()).append(time.monotonic())
            if len(self._failures) > 100_000:  # bound memory under a spray of addresses
                self._failures.clear()
