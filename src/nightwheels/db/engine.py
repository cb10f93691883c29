"""Engines and sessions.

SQLite runs in WAL mode with a busy timeout, and write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing with
"database is locked" when a read transaction tries to upgrade. PostgreSQL uses one pool.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000


RETRYABLE = ("locked", "deadlock detected", "could not serialize access")


def _retryable(exc: OperationalError) -> bool:
    message = str(exc).lower()
    return any(text in message for text in RETRYABLE)


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


# A pooled PostgreSQL connection idle for longer than this is checked with a round trip
# before it is handed out (a database restart or an idle timeout may have closed it). One
# in steady use is not: ``pool_pre_ping`` on every checkout was three of an upload's 21 round
# trips. A connection that breaks while in use fails its request with a 503, and SQLAlchemy
# then replaces every connection of the pool made before the failure.
PING_AFTER_IDLE_S = 1.0


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < idle_s:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
            dbapi_conn.rollback()  # the ping's transaction
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (up to 3 times).
            raise DisconnectionError(f"a pooled connection was closed: {exc}") from exc


class Database:
    """The engines and session factories for one database URL."""

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        self.url = url
        if _is_sqlite(url):
            self.read_engine = _sqlite_engine(url, immediate=False)
            self.write_engine = _sqlite_engine(url, immediate=True)
        else:
            kwargs: dict[str, Any] = {
                "pool_size": pool_size,
                "max_overflow": max_overflow,
            }
            self.read_engine = self.write_engine = create_engine(url, **kwargs)
            _ping_when_idle(self.write_engine, PING_AFTER_IDLE_S)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self._lookup = (
            self._read
            if self.is_sqlite
            else sessionmaker(
                self.read_engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
            )
        )
        # SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
        # steps of up to 100 ms (its busy handler). Threads of this process queue on a lock
        # instead, and are handed the database as soon as it is free; other processes
        # (the CLI, a second server) still meet the busy timeout.
        self._write_lock: AbstractContextManager[object] = (
            threading.RLock() if self.is_sqlite else nullcontext()
        )

    @property
    def is_sqlite(self) -> bool:
        return _is_sqlite(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session:
            yield session

    @contextmanager
    def lookup(self) -> Iterator[Session]:
        """A read whose statements need no common snapshot: each sees what was committed
        when it ran. On PostgreSQL it runs outside any transaction (autocommit), which
        saves the BEGIN and ROLLBACK round trips of a read (two of an upload's reads are
        one statement each); on SQLite it is :meth:`read`. Never write through it."""
        with self._lookup() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on any error."""
        with self._write_lock, self._write() as session, session.begin():
            yield session

    def run_write(self, fn: Callable[[Session], T], attempts: int = 5) -> T:
        """Run ``fn`` in a write transaction, retrying when the engine asks for a retry.

        SQLite: a busy database. PostgreSQL: a deadlock or serialisation failure, which
        it resolves by aborting one of the transactions.
        """
        for attempt in range(attempts):
            try:
                with self.write() as session:
                    return fn(session)
            except OperationalError as exc:
                if not _retryable(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            self.write_engine.dispose()
