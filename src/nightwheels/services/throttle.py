"""The failed-authentication throttle: at most ``limit`` failures per source in a window.

Failures are recorded in the database so that every server process (``--workers N``, several
servers) counts the same ones; the check itself costs no query: a process that records a
failure learns the shared count and blocks the source locally until the window frees a slot.
A source spread over N processes therefore gets at most ``limit + N - 1`` failures a window.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from nightwheels.db.engine import Database
from nightwheels.db.models import AuthFailure, utcnow
from nightwheels.errors import RateLimited

MAX_BLOCKED_SOURCES = 100_000  # bound memory under a spray of addresses


class FailureThrottle:
    def __init__(self, db: Database, limit: int, window: float = 60.0) -> None:
        self.db = db
        self.limit = limit
        self.window = window
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, source: str | None) -> None:
        """Raise :class:`RateLimited` if ``source`` used up its failures; no I/O."""
        if source is None:
            return
        with self._lock:
            until = self._blocked_until.get(source)
        if until is None:
            return
        remaining = until - time.monotonic()
        if remaining <= 0:
            with self._lock:
                self._blocked_until.pop(source, None)
            return
        raise RateLimited(
            f"too many failed authentication attempts from {source}; "
            f"retry in {int(remaining) + 1} s"
        )

    def failed(self, source: str | None) -> None:
        """Record a failure from ``source``; block it here once the shared count is reached.

        Blocking I/O (one short write): call it from a worker thread, not the event loop.
        """
        if source is None:
            return
        now = time.monotonic()
        oldest_age = self._record(source[:100])
        if oldest_age is None:
            return
        with self._lock:
            if len(self._blocked_until) > MAX_BLOCKED_SOURCES:
                self._blocked_until.clear()
            self._blocked_until[source] = now + max(self.window - oldest_age, 1.0)

    def _record(self, source: str) -> float | None:
        """Store the failure; when ``limit`` are in the window, the age of the oldest (s)."""
        window = timedelta(seconds=self.window)

        def run(session: Session) -> float | None:
            at = utcnow()
            session.execute(delete(AuthFailure).where(AuthFailure.at < at - window))
            session.add(AuthFailure(source=source, at=at))
            session.flush()
            count, oldest = session.execute(
                select(func.count(), func.min(AuthFailure.at)).where(
                    AuthFailure.source == source, AuthFailure.at >= at - window
                )
            ).one()
            if count < self.limit or oldest is None:
                return None
            return (at - oldest).total_seconds()

        return self.db.run_write(run)
