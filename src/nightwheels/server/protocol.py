"""The HTTP/1.1 protocol the server runs: uvicorn's httptools protocol with a bound on headers.

httptools (llhttp) puts no limit on the request line and headers: uvicorn would buffer a
20 MB header and hand it to the app. Here the bytes received before the headers are
complete are counted, and past ``MAX_HEAD_BYTES`` the client gets a 431 and the connection
is closed. Memory per connection stays bounded by the limit plus one socket read.

The head must also arrive within ``NIGHTWHEELS_HEAD_TIMEOUT`` seconds of the connection
opening (or of the previous response): uvicorn has no such timer, so a client dribbling
one header byte at a time (slowloris) would hold a connection for ever.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
REASON_HEADER = "x-nightwheels-reason"  # the app's reason phrase for the status line
_REASON_LINE = REASON_HEADER.encode() + b": "
DRAIN_SECONDS = 2.0

_RESPONSE_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 38\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request line and headers took too long\r\n"
)

_RESPONSE_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 40\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request line and headers exceed 64 KiB\r\n"
)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Refuse requests whose request line and headers exceed :data:`MAX_HEAD_BYTES`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _start_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(head_timeout(), self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self._refused and not self.transport.is_closing():
            self._refuse(_RESPONSE_408)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # drained and dropped until the connection is closed
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse(_RESPONSE_431)

    def _refuse(self, response: bytes) -> None:
        """Answer, then keep reading (and dropping) for a moment before closing.

        Closing a socket with unread input makes the kernel send a reset, and the client
        would see "connection reset" instead of the answer.
        """
        self._refused = True
        self._cancel_head_timer()
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        cycle = getattr(self, "cycle", None)
        if cycle is not None and not isinstance(cycle.transport, ReasonInStatusLine):
            cycle.transport = ReasonInStatusLine(cycle.transport)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head_timer()  # for the next request on this connection


class ReasonInStatusLine:
    """The connection's transport, but a response head's :data:`REASON_HEADER` becomes its
    reason phrase (``HTTP/1.1 400 <message>``) instead of a header.

    ASGI has no way to set the reason phrase, and twine prints only the status line of a
    refused upload (the body with ``--verbose``). Warehouse puts its message there; so does
    the upload endpoint, through this header (``server.errors``).
    """

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 ") and _REASON_LINE in data:
            data = _move_reason(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _move_reason(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return data
    lines = data[:end].split(b"\r\n")
    kept = [line for line in lines[1:] if not line.startswith(_REASON_LINE)]
    reasons = [line[len(_REASON_LINE) :] for line in lines[1:] if line.startswith(_REASON_LINE)]
    status = lines[0][: len(b"HTTP/1.1 200 ")]
    return b"\r\n".join([status + reasons[0], *kept]) + data[end:]


@cache
def head_timeout() -> float:
    from nightwheels.config import Settings

    return Settings().head_timeout


def http_protocol() -> str:
    """The ``http`` setting for uvicorn: the bounded protocol, or h11 (which has its own bound)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return f"{__name__}:BoundedHttpToolsProtocol"
