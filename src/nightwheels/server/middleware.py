"""The server's edge as plain ASGI middleware (cheap on the hot path): security headers on
every response, and bounds on every request body."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    ),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimits:
    """Every request body is bounded while it is read, before anything buffers it.

    - Size: bodies other than uploads (``/legacy/...``, which have their own limit, checked
      while they are staged to disk) are at most ``max_bytes``: a ``Content-Length`` above it
      is answered 413 before a byte is read; a chunked body, as soon as it passes the limit.
    - Time: a body must arrive within ``timeout`` seconds plus one second per ``min_rate``
      bytes received (a client trickling a byte every few seconds holds no connection for
      long); past that, 408.

    Either way the client gets the refusal and the connection is closed, whatever the
    endpoint was doing with the body (FastAPI would turn a read error into a 400).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout: float,
        min_rate: int,
        unlimited_prefixes: tuple[str, ...] = ("/legacy",),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.min_rate = min_rate
        self.unlimited_prefixes = unlimited_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = None if scope["path"].startswith(self.unlimited_prefixes) else self.max_bytes
        declared, chunked = _body_headers(scope)
        if declared == 0 and not chunked:
            await self.app(scope, receive, send)  # no body: nothing to bound
            return
        if limit is not None and declared is not None and declared > limit:
            await _refuse(send, 413, self._too_large(limit))
            return
        await _BoundedBody(self, limit, receive, send).run(scope)

    def _too_large(self, limit: int) -> str:
        return f"the request body is larger than this endpoint's limit of {_size(limit)}"


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


def _body_headers(scope: Scope) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (``None`` if absent or unreadable) and chunked-ness."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = int(value) if value.isdigit() else None
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
    if declared is None and not chunked:
        declared = 0  # HTTP/1.1: neither header means no body
    return declared, chunked


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": _CODES[status], "message": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


_CODES = {408: "body-timeout", 413: "too-large"}


class _BoundedBody:
    def __init__(self, limits: BodyLimits, limit: int | None, receive: Receive, send: Send):
        self.limits = limits
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.complete = False
        self.refusal: tuple[int, str] | None = None
        self.started = False  # a response start was sent (the app's or ours)
        self.loop = asyncio.get_running_loop()
        self.began = self.loop.time()

    async def run(self, scope: Scope) -> None:
        try:
            await self.limits.app(scope, self.receive, self.send)
        except Exception:
            if self.refusal is None:
                raise
        if self.refusal is not None and not self.started:
            self.started = True
            await _refuse(self._send, *self.refusal)

    def _refuse_body(self, status: int, message: str) -> _BodyRefused:
        self.refusal = (status, message)
        return _BodyRefused(message)

    async def receive(self) -> Message:
        if self.refusal is not None:
            return {"type": "http.disconnect"}
        if self.complete:  # e.g. a streaming response listening for the disconnect
            return await self._receive()
        allowed = self.limits.timeout + self.received / self.limits.min_rate
        left = self.began + allowed - self.loop.time()
        try:
            if left <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(self._receive(), left)
        except TimeoutError:
            raise self._refuse_body(
                408, f"the request body took longer than {allowed:.0f} s to arrive"
            ) from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.limit is not None and self.received > self.limit:
                raise self._refuse_body(413, self.limits._too_large(self.limit))
            self.complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is not None:
            return  # the app's answer to a body it could not read; ours is sent instead
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class _BodyRefused(Exception):
    """Raised into the app from ``receive``: the body was cut off (see ``refusal``)."""
