"""Copying many blobs at once: object stores answer in tens of milliseconds each."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def in_parallel(fn: Callable[[T], None], items: Iterable[T], jobs: int) -> None:
    """Run ``fn`` over ``items`` on ``jobs`` threads with a bounded number in flight.

    The first error cancels what has not started and is raised once running calls end.
    """
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending: set[Future[None]] = set()
        try:
            for item in items:
                pending.add(pool.submit(fn, item))
                if len(pending) >= jobs * 4:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
            for future in pending:
                future.result()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
