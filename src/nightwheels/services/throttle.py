"""The failed-authentication throttle: per source address, and per account for passwords.

Two kinds of credential, two rules:

- A token (a personal token, an OIDC JWT) is too long to guess, so a valid one is always
  accepted, whoever else failed from the same address (a CI fleet behind one NAT, users
  behind one proxy). Failures are counted per address; once an address is over its limit,
  its failures answer 429 instead of 401.
- A password can be guessed, so a blocked address or account is refused before the
  password is even checked, and failures count against both: the address's limit stops one
  client trying many accounts, the account's limit stops many addresses trying one account.

Failures are recorded in the database so that every server process (``--workers N``, several
servers) counts the same ones; the check itself costs no query: a process that records a
failure learns the shared count and blocks the key locally until the window frees a slot.
A key spread over N processes therefore gets at most ``limit + N - 1`` failures a window.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from nightwheels.db.engine import Database
from nightwheels.db.models import AuthFailure, utcnow
from nightwheels.errors import RateLimited, Unauthenticated

T = TypeVar("T")

MAX_BLOCKED = 100_000  # keys blocked at once, at most (memory under a spray of addresses/names)
KEY_CHARS = 100  # the stored key's length (AuthFailure.source)
ACCOUNT_PREFIX = "user:"  # account keys; no address starts with it


class FailureThrottle:
    """Blocked keys (addresses, ``user:<name>``) with the time their block ends."""

    def __init__(self, db: Database, limit: int, window: float = 60.0) -> None:
        self.db = db
        self.limit = limit
        self.window = window
        self._blocked_until: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def remaining(self, key: str | None) -> float | None:
        """Seconds left of ``key``'s block, or ``None`` when it is not blocked; no I/O."""
        if key is None:
            return None
        key = key[:KEY_CHARS]
        with self._lock:
            until = self._blocked_until.get(key)
            if until is None:
                return None
            remaining = until - time.monotonic()
            if remaining <= 0:
                del self._blocked_until[key]
                return None
            return remaining

    def failed(self, key: str | None, limit: int | None = None) -> None:
        """Record a failure of ``key``; block it here once the shared count is reached.

        Blocking I/O (one short write): call it from a worker thread, not the event loop.
        """
        if key is None:
            return
        key = key[:KEY_CHARS]
        now = time.monotonic()
        oldest_age = self._record(key, limit or self.limit)
        if oldest_age is None:
            return
        with self._lock:
            self._blocked_until.pop(key, None)
            self._blocked_until[key] = now + max(self.window - oldest_age, 1.0)
            while len(self._blocked_until) > MAX_BLOCKED:  # the oldest block ends first
                self._blocked_until.popitem(last=False)

    def _record(self, key: str, limit: int) -> float | None:
        """Store the failure; when ``limit`` are in the window, the age of the oldest (s)."""
        window = timedelta(seconds=self.window)

        def run(session: Session) -> float | None:
            at = utcnow()
            session.execute(delete(AuthFailure).where(AuthFailure.at < at - window))
            session.add(AuthFailure(source=key, at=at))
            session.flush()
            count, oldest = session.execute(
                select(func.count(), func.min(AuthFailure.at)).where(
                    AuthFailure.source == key, AuthFailure.at >= at - window
                )
            ).one()
            if count < limit or oldest is None:
                return None
            return (at - oldest).total_seconds()

        return self.db.run_write(run)


def _refusal(what: str, remaining: float) -> RateLimited:
    seconds = int(remaining) + 1
    return RateLimited(
        f"too many failed authentication attempts {what}; retry in {seconds} s",
        retry_after=seconds,
    )


class AuthThrottle:
    """The one throttle every edge authenticates through (API, uploads, OIDC, web forms).

    Blocking (database I/O): call its methods from a worker thread.
    """

    def __init__(
        self, db: Database, per_source: int, per_account: int, window: float = 60.0
    ) -> None:
        self.failures = FailureThrottle(db, per_source, window)
        self.per_account = per_account

    def token(self, source: str | None, check: Callable[[], T]) -> T:
        """Run ``check`` (which raises :class:`Unauthenticated` on a bad token).

        A valid token is never refused; a failure from a blocked address is a 429.
        """
        try:
            return check()
        except Unauthenticated:
            remaining = self.failures.remaining(source)
            if remaining is not None:
                raise _refusal(f"from {source}", remaining) from None
            self.failures.failed(source)
            raise

    def password(self, source: str | None, account: str, check: Callable[[], T]) -> T:
        """Run ``check`` unless the address or the account is blocked; count its failure."""
        account_key = ACCOUNT_PREFIX + account
        for key, what in (
            (source, f"from {source}"),
            (account_key, f"for {account[:KEY_CHARS]!r}"),
        ):
            remaining = self.failures.remaining(key)
            if remaining is not None:
                raise _refusal(what, remaining)
        try:
            return check()
        except Unauthenticated:
            self.failures.failed(source)
            self.failures.failed(account_key, self.per_account)
            raise
