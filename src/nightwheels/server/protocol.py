"""The HTTP/1.1 protocol the server runs: uvicorn's httptools protocol with a bound on headers.

httptools (llhttp) puts no limit on the request line and headers: uvicorn would buffer a
20 MB header and hand it to the app. Here the bytes received before the headers are
complete are counted, and past ``MAX_HEAD_BYTES`` the client gets a 431 and the connection
is closed. Memory per connection stays bounded by the limit plus one socket read.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024
DRAIN_SECONDS = 2.0

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

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # drained and dropped until the connection is closed
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse()

    def _refuse(self) -> None:
        """Answer 431, then keep reading (and dropping) for a moment before closing.

        Closing a socket with unread input makes the kernel send a reset, and the client
        would see "connection reset" instead of the answer.
        """
        self._refused = True
        self.transport.write(_RESPONSE_431)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(DRAIN_SECONDS, self.transport.close)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0


def http_protocol() -> str:
    """The ``http`` setting for uvicorn: the bounded protocol, or h11 (which has its own bound)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return f"{__name__}:BoundedHttpToolsProtocol"
