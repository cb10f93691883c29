"""Sending one distribution to ``POST /legacy/``, with retries on transient failures.

Retried (with exponential backoff and jitter): network errors, HTTP 5xx, 429. Not retried:
other 4xx, which will not change on a retry. A refused token (401) stops the whole run, as
does a server that stays unreachable through every retry: the files not yet sent are
reported as such rather than each waiting through its own retries.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import httpx

from nightwheels.upload.credentials import USER_AGENT, Credentials
from nightwheels.upload.files import LocalDist

Outcome = Literal["uploaded", "replaced", "unchanged", "failed"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
WHOLE_BODY = 4 * 1024 * 1024  # files up to this size are sent from one buffer
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries in all, per file
    backoff: float = 1.0  # first wait in seconds, doubled each time
    max_wait: float = 30.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_wait)
        base = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
        return base * random.uniform(0.5, 1.0)


@dataclass
class FileResult:
    dist: LocalDist
    outcome: Outcome
    reason: str | None = None
    attempts: int = 0
    project: str | None = None
    warnings: list[str] = field(default_factory=list)


class Retrying(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, connect: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.connect = connect


def _quote(value: str) -> str:
    """A form-data name or filename in a Content-Disposition header (as browsers do)."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    fields: list[tuple[str, str]], filename: str, stream: BinaryIO, size: int
) -> tuple[str, int, bytes | Iterator[bytes]]:
    """``multipart/form-data`` for the upload form: content type, length and body.

    Built here rather than by httpx, whose encoder hands every field to the socket as
    several small writes (some 40 system calls, and as many reads on the server, per
    file). A file of up to :data:`WHOLE_BODY` bytes goes in one buffer; a larger one is
    streamed in :data:`CHUNK` pieces, never held in memory.
    """
    boundary = secrets.token_hex(16)
    head = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
            for name, value in fields
        )
        + (
            f'--{boundary}\r\nContent-Disposition: form-data; name="content"; '
            f'filename="{_quote(filename)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    length = len(head) + size + len(tail)
    if size <= WHOLE_BODY:
        data = stream.read(size + 1)
        if len(data) != size:
            raise OSError(f"{filename} changed size while being uploaded")
        return content_type, length, head + data + tail

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        while chunk := stream.read(CHUNK):
            sent += len(chunk)
            yield chunk
        if sent != size:
            raise OSError(f"{filename} changed size while being uploaded")
        yield tail

    return content_type, length, chunks()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
    except ValueError:
        pass
    text = " ".join(response.text.split())
    return text[:300] or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"connection broken ({text})"


class Uploader:
    """Thread-safe: one pooled HTTP client shared by the upload workers."""

    def __init__(
        self,
        credentials: Credentials,
        labels: list[str],
        *,
        policy: RetryPolicy | None = None,
        connections: int = 8,
        timeout: float = 60.0,
        on_retry: Callable[[LocalDist, int, str, float], None] | None = None,
    ) -> None:
        self.credentials = credentials
        self.labels = labels
        self.policy = policy or RetryPolicy()
        self.on_retry = on_retry
        self.aborted: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.client = httpx.Client(
            auth=httpx.BasicAuth("__token__", credentials.token),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
            timeout=httpx.Timeout(timeout, connect=10.0),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    @property
    def url(self) -> str:
        return self.credentials.server + "/legacy/"

    def close(self) -> None:
        self.client.close()

    def abort(self, reason: str) -> None:
        with self._lock:
            if self.aborted is None:
                self.aborted = reason
        self._stop.set()

    def _fields(self, dist: LocalDist) -> list[tuple[str, str]]:
        fields = [
            (":action", "file_upload"),
            ("protocol_version", "1"),
            ("name", dist.name),
            ("version", dist.version),
            ("filetype", dist.packagetype),
            ("pyversion", dist.pyversion),
            ("metadata_version", dist.metadata_version),
            ("sha256_digest", dist.sha256),
        ]
        return fields + [("label", label) for label in self.labels]

    def _send(self, dist: LocalDist) -> FileResult:
        """One attempt: a result, or :class:`Retrying`."""
        try:
            with dist.path.open("rb") as stream:
                content_type, length, body = multipart_body(
                    self._fields(dist), dist.filename, stream, dist.size
                )
                response = self.client.post(
                    self.url,
                    content=body,
                    headers={"Content-Type": content_type, "Content-Length": str(length)},
                )
        except httpx.TransportError as exc:
            raise Retrying(
                f"network error: {_describe(exc)}", connect=isinstance(exc, httpx.ConnectError)
            ) from None
        except OSError as exc:  # reading the file, not the network (httpx wraps those)
            return FileResult(dist, "failed", f"cannot read the file: {exc.strerror or exc}")
        status = response.status_code
        if status == 200:
            return self._success(dist, response)
        message = _message(response)
        if status in RETRY_STATUSES:
            raise Retrying(f"server error (HTTP {status}): {message}", _retry_after(response))
        if 300 <= status < 400:
            where = response.headers.get("location", "elsewhere")
            return FileResult(
                dist,
                "failed",
                f"the server redirected the upload to {where}: use that URL as the server",
            )
        if status == 401:
            self.abort(f"the server refused the token: {message}")
            return FileResult(dist, "failed", f"the server refused the token: {message}")
        return FileResult(dist, "failed", f"refused (HTTP {status}): {message}")

    def _success(self, dist: LocalDist, response: httpx.Response) -> FileResult:
        outcome: Outcome = "uploaded"
        try:
            body = response.json()
        except ValueError:  # an index that speaks plain text only
            words = response.text.split()
            if len(words) >= 3 and words[0] == "OK:" and words[2] in ("replaced", "unchanged"):
                outcome = words[2]  # type: ignore[assignment]
            return FileResult(dist, outcome)
        if body.get("outcome") in ("uploaded", "replaced", "unchanged"):
            outcome = body["outcome"]
        warnings = [str(w) for w in body.get("warnings") or []]
        return FileResult(dist, outcome, project=body.get("project"), warnings=warnings)

    def upload(self, dist: LocalDist) -> FileResult:
        """Upload one file with retries; never raises for a failure, returns it."""
        last = "not attempted"
        connect_failure = False
        for attempt in range(1, self.policy.attempts + 1):
            if self.aborted is not None:
                done = attempt - 1
                reason = (
                    f"{last}; then stopped: {self.aborted}" if done else f"not sent: {self.aborted}"
                )
                return FileResult(dist, "failed", reason, done)
            try:
                result = self._send(dist)
                result.attempts = attempt
                return result
            except Retrying as retry:
                last, connect_failure = retry.reason, retry.connect
                if attempt == self.policy.attempts:
                    break
                wait = self.policy.wait(attempt, retry.retry_after)
                if self.on_retry is not None:
                    self.on_retry(dist, attempt, retry.reason, wait)
                if self._stop.wait(wait):
                    continue  # aborted while waiting: the loop head reports it
        if connect_failure:
            self.abort(f"the server at {self.credentials.server} is unreachable")
        tries = self.policy.attempts
        return FileResult(
            dist, "failed", f"{last} (after {tries} attempt{'s' if tries > 1 else ''})", tries
        )
