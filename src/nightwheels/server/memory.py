"""Give free heap memory back to the operating system now and then (glibc only).

A long-running server frees as much as it allocates, but glibc's malloc keeps freed memory
inside its arenas, so the process's RSS creeps up with fragmentation (measured in the soak:
Python objects and caches flat, free memory kept by malloc growing). ``malloc_trim(0)``
releases those free pages; it costs a walk over the arenas, so it runs every
``interval`` seconds on a thread of its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryTrimmer:
    """A background task with ``start()``/``stop()``, like the maintenance scheduler."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._trim = _malloc_trim()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._trim is None or self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._loop, name="malloc-trim", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        assert self._trim is not None
        while not self._stop.wait(self.interval):
            try:
                self._trim(0)
            except Exception:  # never let housekeeping take the server down
                log.exception("malloc_trim failed")
                return
