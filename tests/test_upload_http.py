"""The upload's own HTTP client (``upload.http``) against real sockets on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nightwheels.upload.http import Client, TransportError
from tests.support.server import free_port


class Recorder(BaseHTTPRequestHandler):
    """Answers every POST with 200 and what it saw; ``close_silently`` drops the connection
    after each answer without saying so, as a server whose keep-alive timeout just ran out."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, bytes]]
    connections: set[tuple[str, int]]
    close_silently = False

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append((self.path, self.headers.get("proxy-authorization", ""), body))
        self.connections.add(self.client_address)
        answer = b"ok:" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        self.wfile.flush()
        if self.close_silently:
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"seen": [], "connections": set()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_keeps_the_connection_and_replaces_a_stale_one(
    recorder: tuple[str, type[Recorder]],
) -> None:
    url, handler = recorder
    client = Client(url, {"User-Agent": "test"})
    try:
        for i in range(3):
            assert client.post("/legacy/", f"{i}".encode(), {}).body == f"ok:{i}".encode()
        assert len(handler.connections) == 1  # kept alive
        handler.close_silently = True
        for _ in range(3):  # the server drops the connection after each answer from now on
            assert client.post("/legacy/", b"again", {}).status == 200
        assert len(handler.connections) == 1 + 2  # the last two found theirs closed
        assert [path for path, _, _ in handler.seen] == ["/legacy/"] * 6  # none sent twice
    finally:
        client.close()


def test_goes_through_the_proxy_the_environment_names(
    recorder: tuple[str, type[Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_url, handler = recorder
    host_port = proxy_url.removeprefix("http://")
    monkeypatch.setenv("HTTP_PROXY", f"http://ci%40corp:s%3Acret@{host_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = Client("http://nightlies.example.org/base", {})
    try:
        assert client.post("/legacy/batch/", b"x", {}).status == 200
    finally:
        client.close()
    path, proxy_auth, _ = handler.seen[0]
    assert path == "http://nightlies.example.org/base/legacy/batch/"
    assert proxy_auth == "Basic Y2lAY29ycDpzOmNyZXQ="  # ci@corp:s:cret

    # NO_PROXY names the host: straight to it (here: nothing listens, so it cannot connect).
    port = free_port()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct = Client(f"http://127.0.0.1:{port}", {})
    with pytest.raises(TransportError) as refused:
        direct.post("/legacy/", b"x", {})
    assert refused.value.connect and "cannot connect" in refused.value.reason
    assert len(handler.seen) == 1


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = Client(f"http://127.0.0.1:{listener.getsockname()[1]}", {}, timeout=1)
        with pytest.raises(TransportError) as silent:
            client.post("/legacy/", b"x", {})
    assert not silent.value.connect
    assert silent.value.reason == "timed out waiting for the server"
    client.close()
