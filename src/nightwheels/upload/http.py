"""A small keep-alive HTTP/1.1 client on the standard library, for ``nightwheels upload``.

Not httpx: the upload runs in every nightly CI job, and importing httpx alone costs
about 0.2 s there (more than a hundred small uploads to a nearby server), and it spends
more client CPU per request than the upload itself needs. This is only what the upload
needs: POST a body to one server over kept-alive connections, one per thread, through
the proxy the environment names (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``), with
the system's certificate store (``SSL_CERT_FILE``/``SSL_CERT_DIR`` are honoured).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_RESPONSE = 16 * 1024 * 1024  # an upload answer is small; refuse a runaway one


class TransportError(Exception):
    """The request did not get an answer. ``connect``: no connection could be made."""

    def __init__(self, reason: str, *, connect: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connect = connect


@dataclass
class Response:
    status: int
    reason: str
    headers: dict[str, str]  # names in lower case
    body: bytes = field(repr=False)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> object:
        return json.loads(self.body)  # ValueError if it is not JSON


def message(response: Response) -> str:
    """What the answer says, for a person: a nightwheels error's ``message``, else its text."""
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    text = " ".join(response.text.split())
    return text[:300] or response.reason


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _proxy_for(url: urllib.parse.SplitResult) -> urllib.parse.SplitResult | None:
    """The proxy for ``url``, as urllib (and httpx) find it: the environment's variables
    (on macOS and Windows, also the system's settings)."""
    proxy = urllib.request.getproxies().get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(url.hostname or ""):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    return urllib.parse.urlsplit(proxy)


class Client:
    """POSTs to one server; thread-safe (each thread keeps its own connection)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.url = urllib.parse.urlsplit(base_url)
        if self.url.scheme not in ("http", "https") or not self.url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.headers = headers
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.proxy = _proxy_for(self.url)
        if self.proxy is not None and self.url.scheme == "http":  # the proxy reads each request
            self.headers = {**headers, **self._proxy_headers()}
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []
        self._ssl: ssl.SSLContext | None = None

    def _new_connection(self) -> http.client.HTTPConnection:
        host, port = self.url.hostname or "", self.url.port
        if self.url.scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        if self.proxy is not None:  # CONNECT tunnel for https, absolute URIs for http
            proxy_port = self.proxy.port or (443 if self.proxy.scheme == "https" else 80)
            if self.url.scheme == "https":
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    self.proxy.hostname or "",
                    proxy_port,
                    timeout=self.connect_timeout,
                    context=self._ssl,
                )
                conn.set_tunnel(host, port or 443, headers=self._proxy_headers())
            else:
                conn = http.client.HTTPConnection(
                    self.proxy.hostname or "", proxy_port, timeout=self.connect_timeout
                )
        elif self.url.scheme == "https":
            conn = http.client.HTTPSConnection(
                host, port, timeout=self.connect_timeout, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise TransportError(f"cannot connect ({_describe(exc)})", connect=True) from None
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._all.append(conn)
        return conn

    def _proxy_headers(self) -> dict[str, str]:
        assert self.proxy is not None
        if self.proxy.username is None:
            return {}
        user = urllib.parse.unquote(self.proxy.username)
        password = urllib.parse.unquote(self.proxy.password or "")
        return {"Proxy-Authorization": basic_auth(user, password)}

    def _target(self, path: str) -> str:
        if self.proxy is not None and self.url.scheme == "http":
            return urllib.parse.urlunsplit((self.url.scheme, self.url.netloc, path, "", ""))
        return path

    def post(self, path: str, body: bytes | Iterable[bytes], headers: dict[str, str]) -> Response:
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: bytes | Iterable[bytes] | None, headers: dict[str, str]
    ) -> Response:
        """Send ``body`` (one buffer, or pieces for a large one) to ``path`` on the server.

        A kept-alive connection that the server closed while idle is replaced and the
        request sent again, once, when it is safe: nothing was answered. A body given
        as pieces cannot be sent twice, so it always goes on a fresh connection.
        """
        if self.url.path.rstrip("/"):
            path = self.url.path.rstrip("/") + path
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and not isinstance(body, bytes | None):
            self._drop(conn)
            conn = None
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                conn = self._new_connection()
                self._local.conn = conn
            try:
                conn.request(
                    method, self._target(path), body=body, headers={**self.headers, **headers}
                )
                answer = conn.getresponse()
                data = answer.read(MAX_RESPONSE + 1)
            except (OSError, http.client.HTTPException) as exc:
                self._drop(conn)
                conn = None
                stale = isinstance(
                    exc, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
                )
                if reused and stale:
                    reused = False
                    continue
                raise TransportError(_describe_broken(exc)) from None
            if len(data) > MAX_RESPONSE:
                self._drop(conn)
                raise TransportError("the server's answer is too large to be an upload answer")
            if answer.will_close:
                self._drop(conn)
            return Response(
                answer.status,
                answer.reason,
                {name.lower(): value for name, value in answer.getheaders()},
                data,
            )
        raise AssertionError("unreachable")

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            conn.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _describe_broken(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out waiting for the server"
    return f"connection broken ({_describe(exc)})"


def fetch(
    url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    method: str = "GET",
    body: bytes | None = None,
) -> Response:
    """One request to ``url`` on a connection of its own; redirects are not followed.

    :class:`TransportError` also for a URL that is not http(s).
    """
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # ValueError unless a number in 0..65535
        if not url.isprintable():
            raise ValueError(url)
        client = Client(f"{parts.scheme}://{parts.netloc}", {}, timeout=timeout)
    except ValueError:
        raise TransportError(f"{url!r} is not an http(s) URL") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        return client.request(method, target, body, headers)
    finally:
        client.close()
