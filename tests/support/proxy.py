"""A loopback HTTP proxy in front of the live server that can fail or act on chosen uploads.

Requests are forwarded to the real server unless a rule says otherwise: answer 500 for a
filename (always, or its first N times), or run a hook (revoke a token, stop the server)
before forwarding the n-th uploaded file. Every upload's filename is recorded; a batch
counts once for each of its files, and a rule on any of them answers for the batch. ``routes`` answer chosen paths
themselves (stand-ins for endpoints the server does not have).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

_FILENAME = re.compile(rb'filename="([^"]+)"')
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class FaultProxy:
    upstream: str
    fail_always: dict[str, int] = field(default_factory=dict)  # filename -> status
    fail_first: dict[str, int] = field(default_factory=dict)  # filename -> failures left
    before_upload: Callable[[str, int], None] | None = None  # (filename, n-th upload, from 1)
    # path (without query) -> handler(method, full path, headers, body) -> (status, JSON body)
    routes: dict[str, Callable[[str, str, dict[str, str], bytes], tuple[int, object]]] = field(
        default_factory=dict
    )
    seen: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)  # requests per path
    uploads: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=self.upstream, timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("content-length", 0)))

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                body = self._body() if self.command == "POST" else b""
                with proxy._lock:
                    proxy.paths[self.path.split("?", 1)[0]] += 1
                route = proxy.routes.get(self.path.split("?", 1)[0])
                if route is not None:
                    status, answer = route(self.command, self.path, dict(self.headers), body)
                    self._send(status, json.dumps(answer).encode(), "application/json")
                    return
                # A batch carries several files: one failing file fails the whole request.
                filenames = [m.decode() for m in _FILENAME.findall(body)]
                if filenames:
                    decisions = [proxy._decide(filename) for filename in filenames]
                    action = next((d for d in decisions if d is not None), None)
                    if action is not None:
                        self._send(
                            action,
                            b'{"error": "internal", "message": "injected failure"}',
                            "application/json",
                        )
                        return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                response = proxy._client.request(
                    self.command, self.path, content=body or None, headers=headers
                )
                self._send(
                    response.status_code,
                    response.content,
                    response.headers.get("content-type", "text/plain"),
                )

            do_GET = _handle
            do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _decide(self, filename: str) -> int | None:
        with self._lock:
            self.seen[filename] += 1
            if filename in self.fail_always:
                return self.fail_always[filename]
            if self.fail_first.get(filename, 0) > 0:
                self.fail_first[filename] -= 1
                return 500
            self.uploads += 1
            n = self.uploads
        if self.before_upload is not None:
            self.before_upload(filename, n)
        return None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()
