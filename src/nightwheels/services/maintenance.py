"""Scheduled maintenance: prune, collect garbage, send freshness notices.

The server runs it every ``prune_interval`` seconds (0: never) in a background thread;
``nightwheels prune``, ``gc`` and ``notify`` run the same steps by hand. Running it in
several processes at once is safe (each step re-checks the database), only wasteful.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from nightwheels.errors import NightwheelsError
from nightwheels.services import freshness, gc, prune
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services

log = logging.getLogger(__name__)

SCHEDULER = Actor(name="scheduler", source="server")


@dataclass
class MaintenanceResult:
    prune: prune.PruneResult | None = None
    gc: gc.GcResult | None = None
    notices: list[freshness.NoticeOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_once(
    services: Services, notifiers: list[freshness.Notifier], actor: Actor = SCHEDULER
) -> MaintenanceResult:
    """One round; a failing step is logged and does not stop the next ones."""
    result = MaintenanceResult()
    try:
        result.prune = prune.prune(services, actor)
        for plan in result.prune.plan.refused:
            log.warning("prune refused for %s: %s", plan.project, plan.refused)
    except NightwheelsError as exc:  # e.g. PruneAborted: nothing was removed
        result.errors.append(f"prune: {exc.message}")
        log.error("prune aborted: %s", exc.message)
    for name, step in (
        ("gc", lambda: gc.collect(services, actor)),
        ("notify", lambda: freshness.notify(services, actor, notifiers)),
    ):
        try:
            value = step()
        except Exception as exc:  # keep the server's maintenance going
            result.errors.append(f"{name}: {exc}")
            log.exception("maintenance step %s failed", name)
            continue
        if name == "gc":
            result.gc = value  # type: ignore[assignment]
        else:
            result.notices = value  # type: ignore[assignment]
    return result


class Scheduler:
    """A background thread with ``start()``/``stop()`` for ``app.state.background``."""

    def __init__(
        self, services: Services, interval: float, notifiers: list[freshness.Notifier]
    ) -> None:
        self.services = services
        self.interval = interval
        self.notifiers = notifiers
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                run_once(self.services, self.notifiers)
            except Exception:
                log.exception("maintenance run failed")
            self.runs += 1
