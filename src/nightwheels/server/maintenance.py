"""The server's maintenance schedule: one round every ``prune_interval`` seconds.

Each round runs in a child process (spawned, lower CPU priority, killed with the server):
a prune of a large index is CPU-bound Python, and in a thread of the server it would hold
the interpreter lock that request handling needs (measured in benchmarks/prune.py). The
child changes the database; the server's page cache learns of it by its serial poll.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading

from nightwheels.config import Settings

log = logging.getLogger(__name__)

NICE = 10


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when the server dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def run_round(settings: Settings) -> None:
    """One maintenance round (the child process's entry point)."""
    _die_with_parent()
    with contextlib.suppress(OSError):
        os.nice(NICE)
    logging.basicConfig(level=logging.WARNING, format="maintenance: %(levelname)s %(message)s")
    from nightwheels.services.context import Services
    from nightwheels.services.maintenance import run_once
    from nightwheels.trackers.alerts import senders_from_settings
    from nightwheels.trackers.notifiers import from_settings

    services = Services.from_settings(settings)
    try:
        run_once(services, from_settings(settings), senders=senders_from_settings(settings))
    finally:
        services.close()


class Scheduler:
    """Runs :func:`run_round` in a child process every ``interval`` seconds.

    An object with ``start()``/``stop()`` for ``app.state.background``. A round that is still
    running when the next one is due delays it; ``stop()`` ends a running round.
    """

    def __init__(self, settings: Settings, interval: float) -> None:
        self.settings = settings
        self.interval = interval
        self.rounds = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        from nightwheels.services.freshness import notice_warnings
        from nightwheels.trackers.notifiers import from_settings

        for warning in notice_warnings(self.settings, from_settings(self.settings)):
            log.warning(warning)
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        child = self._child
        if child is not None and child.is_alive():
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        context = multiprocessing.get_context("spawn")
        while not self._stop.wait(self.interval):
            child = context.Process(
                target=run_round, args=(self.settings,), name="nightwheels-maintenance"
            )
            self._child = child
            child.start()
            child.join()
            self.rounds += 1
            if child.exitcode not in (0, -signal.SIGTERM):
                log.error("maintenance round exited with %s", child.exitcode)
