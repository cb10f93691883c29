"""Request bodies are bounded while they are read, on a live server over real sockets.

Issue 14 item 2: a 400 MiB JSON body to /api/v1/login took server memory from 369 to
1,561 MiB before its 422, and trickling bodies held connections for minutes. The bound is
proved on the server process's peak resident memory (``VmHWM``, reset before each
request through ``/proc/<pid>/clear_refs``) and on the bytes the server let in.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import LiveServer

MiB = 1024 * 1024
CHUNK = b"[" + b" " * (64 * 1024 - 2) + b"]"  # 64 KiB of one big JSON value, never complete


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(  # a process: its memory is measured
        data=tmp_path / "data", env={"NIGHTWHEELS_BODY_TIMEOUT": "1"}, in_thread=False
    ) as server:
        yield server


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


class PeakMemory:
    """The growth of a process's peak resident memory over a block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> PeakMemory:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.before = _status(self.pid, "VmRSS")
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = _status(self.pid, "VmHWM") - self.before


def _send(
    server: LiveServer, head: str, chunks: Iterator[bytes] = iter(()), *, chunked: bool = False
) -> tuple[bytes, int]:
    """Send ``head`` then ``chunks`` until the server answers; its answer and the body
    bytes sent (the server may read fewer)."""
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server answered before the end of the body
                frame = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                sock.sendall(frame)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
                if b"\r\n\r\n" in answer:
                    break
        except ConnectionResetError:
            pass
    return answer, sent


def _repeat(total: int) -> Iterator[bytes]:
    for _ in range(total // len(CHUNK)):
        yield CHUNK


def _head(path: str, length: int | None, extra: str = "") -> str:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"{extra}{framing}\r\n\r\n"
    )


def test_400_mib_json_body_is_refused_while_read(live: LiveServer) -> None:
    pid = live.process.pid  # type: ignore[union-attr]
    total = 400 * MiB
    # The JSON API is built on its first request (serve starts without FastAPI): build it
    # first, so that what is measured is the body, not a one-time import.
    assert httpx.get(f"{live.url}/api/v1/projects", timeout=30).status_code == 200
    with PeakMemory(pid) as declared:
        answer, sent = _send(live, _head("/api/v1/login", total), _repeat(total))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * MiB  # refused on its Content-Length, not after reading it
    with PeakMemory(pid) as streamed:
        answer, sent = _send(live, _head("/api/v1/login", None), _repeat(total), chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 64 * MiB
    print(
        f"peak memory growth: declared {declared.growth / MiB:.1f} MiB, "
        f"chunked {streamed.growth / MiB:.1f} MiB"
    )
    assert declared.growth < 10 * MiB and streamed.growth < 10 * MiB


def test_credentials_are_checked_before_the_body_is_read(tmp_path: Path) -> None:
    # A body timeout far longer than any answer may take, even on a loaded machine: an
    # answer that waited for the body would come after it (or not at all), not before.
    with LiveServer(data=tmp_path / "data", env={"NIGHTWHEELS_BODY_TIMEOUT": "120"}) as live:
        _refused_before_the_body(live)


def _refused_before_the_body(live: LiveServer) -> None:
    total = 200 * MiB
    for head in (
        _head("/api/v1/tokens", 1000),  # under the size limit: refused for its credentials
        _head("/api/v1/tokens", None),
        _head("/api/v1/tokens", 1000, "Authorization: Bearer nwt_0000_wrong\r\n"),
    ):
        started = time.monotonic()
        answer, _ = _send(live, head)  # no body sent: the answer must not wait for one
        assert answer.startswith(b"HTTP/1.1 401"), (head, answer[:200])
        assert time.monotonic() - started < 60  # not the 120 s body timeout
    answer, sent = _send(live, _head("/api/v1/tokens", None), _repeat(total), chunked=True)
    assert answer.startswith(b"HTTP/1.1 401") and sent < 64 * MiB


def test_a_trickling_body_is_cut_off(live: LiveServer) -> None:
    started = time.monotonic()
    answer, _ = _send(live, _head("/api/v1/login", 100), iter([b"{"]))
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower()
    assert 0.9 < elapsed < 10
