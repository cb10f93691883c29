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
