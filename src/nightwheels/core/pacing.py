"""Pacing: at most ``rate`` steps a second, without bursts after a slow step."""

from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    """Call :meth:`wait` before each step; it sleeps until the step's slot.

    Slots are ``1 / rate`` apart from the first step; a step that runs late does not earn
    a burst afterwards (the schedule restarts from the late step). ``rate <= 0``: no pacing.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock = clock
        self.sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self._next
        self._next = now + self.interval


class CostPacer:
    """Pace steps by what each one costs the servers, not by a fixed rate.

    After a step, :meth:`spent` is told what it costs a server (e.g. the seconds it takes
    to render the pages that step changed); the next step waits until that cost is at
    most ``share`` of the time elapsed since the step began, so servers spend at most
    ``share`` of their time catching up, whatever the size of the steps. ``rate`` (steps a
    second, ``0`` none) is a ceiling on top; ``share <= 0`` leaves only the ceiling.
    """

    def __init__(
        self,
        share: float,
        rate: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.share = share
        self.floor = Pacer(rate, clock, sleep)
        self.clock = clock
        self.sleep = sleep
        self._ready: float | None = None

    def wait(self) -> None:
        """Before a step."""
        if self._ready is not None:
            now = self.clock()
            if now < self._ready:
                self.sleep(self._ready - now)
        self.floor.wait()
        self._started = self.clock()

    def spent(self, cost: float) -> None:
        """After a step: its cost to a server, in seconds."""
        if self.share > 0:
            self._ready = self._started + cost / self.share
