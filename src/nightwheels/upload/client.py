"""Sending distributions to the server, with retries on transient failures.

Small files go several to a request (``POST /legacy/batch/``, one answer per file);
a large file, a batch of one, or a server without the batch endpoint (404/405) uses the
legacy upload, one file per request (``POST /legacy/``).

Retried (with exponential backoff and jitter): network errors, HTTP 5xx, 429. Not retried:
other 4xx, which will not change on a retry. A batch that the server fails with a 5xx
(or finds too large) is split: its files are sent one by one, each with the attempts it
has left, so one file that breaks the server fails alone. A refused token (401) stops
the whole run at once, as does a server that never answered (a refused connection is not
retried: nothing listens there), or one that stays unreachable through every retry: the
files not yet sent are reported as such rather than each waiting through its own retries.
``Uploader.fatal`` then says in one line what went wrong and how to fix it.
"""

from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from nightwheels.upload.credentials import USER_AGENT, Credentials
from nightwheels.upload.files import LocalDist
from nightwheels.upload.http import Client, Response, TransportError, basic_auth
from nightwheels.upload.http import message as server_message

Outcome = Literal["uploaded", "replaced", "unchanged", "failed"]
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SPLIT_STATUSES = frozenset({413, 500, 502, 504})  # a batch answered so is sent file by file
WHOLE_BODY = 4 * 1024 * 1024  # files up to this size are sent from one buffer (and batched)
CHUNK = 1024 * 1024
BATCH_BYTES = 8 * 1024 * 1024  # at most this much file data in one batch
MAX_BATCH = 200  # files in one batch: the server's limit (server.multipart.MAX_BATCH_FILES)
LEGACY_PATH = "/legacy/"
BATCH_PATH = "/legacy/batch/"


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


class Split(Exception):
    """The server failed a whole batch in a way one of its files may have caused."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NoBatches(Exception):
    """The server has no batch endpoint (an older nightwheels, or another index)."""


class FileReadError(Exception):
    """Reading a file failed while its body was being sent (not a network error)."""


def _quote(value: str) -> str:
    """A form-data name or filename in a Content-Disposition header (as browsers do)."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _form_head(boundary: str, fields: list[tuple[str, str]], filename: str) -> bytes:
    """A file's form fields, then the headers of its ``content`` part."""
    return (
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


def multipart_body(
    fields: list[tuple[str, str]], filename: str, stream: BinaryIO, size: int
) -> tuple[str, int, bytes | Iterator[bytes]]:
    """``multipart/form-data`` for the upload form: content type, length and body.

    Each field written to the socket as its own piece would cost a system call here and
    a read on the server (some 40 per file). A file of up to :data:`WHOLE_BODY` bytes
    goes in one buffer; a larger one is streamed in :data:`CHUNK` pieces, never held in
    memory.
    """
    boundary = secrets.token_hex(16)
    head = _form_head(boundary, fields, filename)
    tail = f"\r\n--{boundary}--\r\n".encode()
    content_type = f"multipart/form-data; boundary={boundary}"
    length = len(head) + size + len(tail)
    if size <= WHOLE_BODY:
        return content_type, length, head + _read_whole(stream, size, filename) + tail

    def chunks() -> Iterator[bytes]:
        yield head
        sent = 0
        while chunk := _read(stream, filename):
            sent += len(chunk)
            yield chunk
        if sent != size:
            raise FileReadError(f"{filename} changed size while being uploaded")
        yield tail

    return content_type, length, chunks()


def _read_whole(stream: BinaryIO, size: int, filename: str) -> bytes:
    """The whole file, which must still have the size it was checked with."""
    data = stream.read(size + 1)
    if len(data) != size:
        raise OSError(f"{filename} changed size while being uploaded")
    return data


def _read(stream: BinaryIO, filename: str) -> bytes:
    try:
        return stream.read(CHUNK)
    except OSError as exc:
        raise FileReadError(f"cannot read {filename}: {exc.strerror or exc}") from None


def batch_body(forms: list[tuple[list[tuple[str, str]], LocalDist]]) -> tuple[str, bytes]:
    """One body holding the legacy form of each file, one after the other."""
    boundary = secrets.token_hex(16)
    pieces: list[bytes] = []
    for fields, dist in forms:
        pieces.append(_form_head(boundary, fields, dist.filename))
        with dist.path.open("rb") as stream:
            pieces += [_read_whole(stream, dist.size, dist.filename), b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(pieces)


def _retry_after(response: Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def _success(dist: LocalDist, answer: object, attempts: int) -> FileResult:
    if not isinstance(answer, dict):
        return FileResult(dist, "uploaded", attempts=attempts)
    outcome: Outcome = "uploaded"
    if answer.get("outcome") in ("uploaded", "replaced", "unchanged"):
        outcome = answer["outcome"]
    warnings = [str(w) for w in answer.get("warnings") or []]
    project = answer.get("project")
    return FileResult(
        dist,
        outcome,
        attempts=attempts,
        project=str(project) if project else None,
        warnings=warnings,
    )


def _status_of(answer: dict[str, object]) -> int:
    """A failed file's HTTP status in a batch answer (a server error if it says none)."""
    status = answer.get("status")
    return status if isinstance(status, int) and 100 <= status <= 599 else 500


def _plain_success(dist: LocalDist, response: Response) -> FileResult:
    """An index that answers the legacy upload in plain text only (``OK: file outcome``)."""
    words = response.text.split()
    outcome: Outcome = "uploaded"
    if len(words) >= 3 and words[0] == "OK:" and words[2] in ("replaced", "unchanged"):
        outcome = words[2]  # type: ignore[assignment]
    return FileResult(dist, outcome)


class Uploader:
    """Thread-safe: the upload workers share it (each keeps its own connection)."""

    def __init__(
        self,
        credentials: Credentials,
        labels: list[str],
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 60.0,
        on_retry: Callable[[LocalDist, int, str, float], None] | None = None,
        legacy_path: str = LEGACY_PATH,
    ) -> None:
        self.credentials = credentials
        # Where the files go: /legacy/, or an upload session's /legacy/session/<id>/.
        self.legacy_path = legacy_path
        self.batch_path = legacy_path + "batch/"
        self.labels = labels
        self.policy = policy or RetryPolicy()
        self.on_retry = on_retry
        self.batches = True  # cleared when the server turns out to have no batch endpoint
        self.aborted: str | None = None
        self.fatal: str | None = None  # the run cannot succeed: cause and fix, one line
        self.answered = False  # the server has answered at least one request
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.http = Client(
            credentials.server,
            {
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
                "Authorization": basic_auth("__token__", credentials.token),
            },
            timeout=timeout,
        )

    def close(self) -> None:
        self.http.close()

    def abort(self, reason: str, *, fatal: str | None = None) -> None:
        with self._lock:
            if self.aborted is None:
                self.aborted = reason
            if fatal is not None and self.fatal is None:
                self.fatal = fatal
        self._stop.set()

    def _never_answered(self, retry: Retrying) -> bool:
        """A connection that failed before the server ever answered: stop the run now."""
        if not retry.connect or self.answered:
            return False
        server = self.credentials.server
        cause = retry.reason.removeprefix("network error: ")
        self.abort(
            f"the server at {server} is unreachable",
            fatal=f"cannot reach the server at {server}: {cause}; check --server or "
            "NIGHTWHEELS_SERVER, and that the server is running",
        )
        return True

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

    def _post(
        self, path: str, content_type: str, length: int, body: bytes | Iterator[bytes]
    ) -> Response:
        try:
            response = self.http.post(
                path, body, {"Content-Type": content_type, "Content-Length": str(length)}
            )
        except TransportError as exc:
            raise Retrying(f"network error: {exc.reason}", connect=exc.connect) from None
        self.answered = True
        return response

    def _refusal(self, dist: LocalDist, response: Response) -> FileResult:
        """A final answer that is not a success, for one file; :class:`Retrying` if transient."""
        status = response.status
        message = server_message(response)
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
            self.abort(
                f"the server refused the token: {message}",
                fatal=f"the server at {self.credentials.server} refused the token ({message}): "
                "set NIGHTWHEELS_TOKEN to an upload token of these projects (on the server: "
                "nightwheels token create --user NAME --project PROJECT)",
            )
            return FileResult(dist, "failed", f"the server refused the token: {message}")
        return FileResult(dist, "failed", f"refused (HTTP {status}): {message}")

    def _send(self, dist: LocalDist) -> FileResult:
        """One attempt at a legacy upload: a result, or :class:`Retrying`."""
        try:
            with dist.path.open("rb") as stream:
                content_type, length, body = multipart_body(
                    self._fields(dist), dist.filename, stream, dist.size
                )
                response = self._post(self.legacy_path, content_type, length, body)
        except (OSError, FileReadError) as exc:  # the file, not the network
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return FileResult(dist, "failed", f"cannot read the file: {reason}")
        if response.status != 200:
            return self._refusal(dist, response)
        try:
            answer = response.json()
        except ValueError:
            return _plain_success(dist, response)
        return _success(dist, answer, 0)

    def upload(self, dist: LocalDist, first: int = 1, last: str = "not attempted") -> FileResult:
        """Upload one file with retries, from attempt ``first``; never raises, returns."""
        connect_failure = False
        for attempt in range(first, self.policy.attempts + 1):
            if self.aborted is not None:
                return self._stopped(dist, attempt - 1, last)
            try:
                result = self._send(dist)
                result.attempts = attempt
                return result
            except Retrying as retry:
                last, connect_failure = retry.reason, retry.connect
                if self._never_answered(retry):
                    return self._stopped(dist, attempt, last)
                if attempt == self.policy.attempts:
                    break
                if self._wait(dist, attempt, retry):
                    continue  # aborted while waiting: the loop head reports it
        return self._exhausted(dist, last, connect_failure)

    def _stopped(self, dist: LocalDist, done: int, last: str) -> FileResult:
        reason = f"{last}; then stopped: {self.aborted}" if done else f"not sent: {self.aborted}"
        return FileResult(dist, "failed", reason, done)

    def _exhausted(self, dist: LocalDist, last: str, connect_failure: bool) -> FileResult:
        tries = self.policy.attempts
        reason = f"{last} (after {tries} attempt{'s' if tries > 1 else ''})"
        if connect_failure:
            unreachable = f"the server at {self.credentials.server} is unreachable"
            self.abort(unreachable)
            reason += f": {unreachable}"
        return FileResult(dist, "failed", reason, tries)

    def _wait(self, dist: LocalDist | list[LocalDist], attempt: int, retry: Retrying) -> bool:
        """Report the retry and wait before the next attempt; True if aborted meanwhile."""
        wait = self.policy.wait(attempt, retry.retry_after)
        if self.on_retry is not None:
            for each in dist if isinstance(dist, list) else [dist]:
                self.on_retry(each, attempt, retry.reason, wait)
        return self._stop.wait(wait)

    def _send_batch(self, dists: list[LocalDist], attempt: int) -> list[FileResult]:
        """One attempt at a batch: a result per file, or an exception saying what next."""
        try:
            content_type, body = batch_body([(self._fields(d), d) for d in dists])
        except OSError:  # find which file, and send the others
            raise Split("a file could not be read") from None
        response = self._post(self.batch_path, content_type, len(body), body)
        status = response.status
        if status in (404, 405):
            raise NoBatches
        if status in SPLIT_STATUSES:
            raise Split(f"server error (HTTP {status}): {server_message(response)}")
        if status != 200:
            refused = self._refusal(dists[0], response)  # the same answer for every file
            return [FileResult(d, refused.outcome, refused.reason) for d in dists]
        try:
            answers = response.json()["results"]  # type: ignore[index]
            if not isinstance(answers, list) or len(answers) != len(dists):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise Split("the server's answer to a batch is not readable") from None
        results = []
        for dist, answer in zip(dists, answers, strict=True):
            if not isinstance(answer, dict) or answer.get("outcome") != "failed":
                results.append(_success(dist, answer, attempt))
                continue
            status = _status_of(answer)
            message = str(answer.get("message") or "no reason given")
            if status in RETRY_STATUSES:  # this file only: again, on its own
                reason = f"server error (HTTP {status}): {message}"
                if attempt < self.policy.attempts:
                    self._wait(dist, attempt, Retrying(reason))
                results.append(self.upload(dist, attempt + 1, reason))
            else:
                results.append(
                    FileResult(dist, "failed", f"refused (HTTP {status}): {message}", attempt)
                )
        return results

    def upload_batch(self, dists: list[LocalDist]) -> list[FileResult]:
        """Upload several files in one request where the server allows it; never raises."""
        if len(dists) == 1 or not self.batches:
            return [self.upload(dist) for dist in dists]
        last = "not attempted"
        connect_failure = False
        for attempt in range(1, self.policy.attempts + 1):
            if self.aborted is not None:
                return [self._stopped(dist, attempt - 1, last) for dist in dists]
            try:
                return self._send_batch(dists, attempt)
            except NoBatches:
                self.batches = False
                return [self.upload(dist, attempt, last) for dist in dists]
            except Split as split:
                if attempt < self.policy.attempts:
                    self._wait(
                        dists, attempt, Retrying(split.reason + "; sending its files one by one")
                    )
                return [self.upload(dist, attempt + 1, split.reason) for dist in dists]
            except Retrying as retry:
                last, connect_failure = retry.reason, retry.connect
                if self._never_answered(retry):
                    return [self._stopped(dist, attempt, last) for dist in dists]
                if attempt == self.policy.attempts:
                    break
                self._wait(dists, attempt, retry)
        return [self._exhausted(dist, last, connect_failure) for dist in dists]
