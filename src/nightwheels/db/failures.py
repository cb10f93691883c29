"""Database failures a person can act on, and an outage log that does not flood.

- A full disk (SQLite ``SQLITE_FULL``, PostgreSQL ``53100 disk_full``) is
  :class:`StorageFull` (507), as a full blob store is; the transaction was rolled back, so
  nothing was half-written.
- An unreachable or busy database is :class:`DatabaseUnavailable` (503 with ``Retry-After``).
- Anything else is left to the caller (a bug: 500).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from nightwheels.errors import NightwheelsError, StorageFull, Unavailable

RETRY_AFTER = 5  # seconds: what a 503 for the database tells clients


class DatabaseUnavailable(Unavailable):
    code = "database-unavailable"
    status = 503


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)


def database_error(exc: BaseException) -> NightwheelsError | None:
    """The error to answer for a database failure, or ``None`` when it is not one we name."""
    if isinstance(exc, PoolTimeout):
        return _unavailable("the database is busy (no connection free)")
    if not isinstance(exc, DBAPIError):
        return None
    message = str(exc.orig).lower()
    orig = exc.orig
    if (
        (
            isinstance(orig, sqlite3.Error)
            and getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        )
        or "database or disk is full" in message
        or _sqlstate(exc) == "53100"
    ):
        return StorageFull(
            "the server's database storage is full; nothing was changed; try again later"
        )
    if exc.connection_invalidated:
        return _unavailable("the connection to the database was lost")
    if isinstance(orig, sqlite3.Error):
        for text, cause in (
            ("unable to open", "the database file cannot be opened"),
            ("disk i/o error", "the database's disk failed to read or write"),
            ("locked", "the database is busy"),
        ):
            if text in message:
                return _unavailable(cause)
        return None
    if type(orig).__name__ == "OperationalError":  # psycopg: connection and server state
        sqlstate = _sqlstate(exc)
        if sqlstate is None or sqlstate.startswith(("08", "57P", "55")):
            return _unavailable("cannot reach the database")
    return None


def _unavailable(cause: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"the database is unavailable: {cause}; try again in a few seconds",
        retry_after=RETRY_AFTER,
    )


class OutageLog:
    """Log a dependency's outage once, then at most every ``interval`` seconds, and its end."""

    def __init__(self, logger: logging.Logger, what: str, interval: float = 60.0) -> None:
        self.log = logger
        self.what = what
        self.interval = interval
        self._since: float | None = None
        self._last = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            first = self._since is None
            if first:
                self._since = now
            elif now - self._last < self.interval:
                self._suppressed += 1
                return
            self._last, suppressed, self._suppressed = now, self._suppressed, 0
        if first:
            self.log.error("%s is failing: %s", self.what, _one_line(exc))
        else:
            self.log.error(
                "%s is still failing after %.0f s (%d more failures not logged): %s",
                self.what,
                now - (self._since or now),
                suppressed,
                _one_line(exc),
            )

    def recovered(self) -> None:
        with self._lock:
            since, self._since, self._suppressed = self._since, None, 0
        if since is not None:
            self.log.warning("%s recovered after %.0f s", self.what, time.monotonic() - since)


# The outage log of this process's database: the serial poll and the error mapper report to it.
DATABASE_OUTAGE = OutageLog(logging.getLogger("nightwheels.db"), "the database")


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {text[:300]}"
