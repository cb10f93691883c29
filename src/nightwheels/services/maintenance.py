"""Scheduled maintenance: prune, collect garbage, send freshness notices.

The server runs one round every ``prune_interval`` seconds (0: never; see
server/maintenance.py); ``nightwheels prune``, ``gc`` and ``notify`` run the same steps by
hand. Running it in several processes at once is safe (each step re-checks the database),
only wasteful.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from nightwheels.db.models import utcnow
from nightwheels.errors import NightwheelsError
from nightwheels.services import audit, freshness, gc, prune, upload_sessions, upstream_alerts
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services

log = logging.getLogger(__name__)

SCHEDULER = Actor(name="scheduler", source="server")


@dataclass
class MaintenanceResult:
    prune: prune.PruneResult | None = None
    gc: gc.GcResult | None = None
    expired_sessions: list[str] = field(default_factory=list)
    alerts: upstream_alerts.AlertsResult | None = None
    notices: list[freshness.NoticeOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def run_once(
    services: Services,
    notifiers: list[freshness.Notifier],
    actor: Actor = SCHEDULER,
    senders: dict[str, upstream_alerts.Sender] | None = None,
) -> MaintenanceResult:
    """One round; a failing step is logged and does not stop the next ones."""
    started = utcnow()
    clock, cpu = time.monotonic(), time.process_time()
    result = MaintenanceResult()
    try:
        result.prune = prune.prune(services, actor)
        for plan in result.prune.plan.refused:
            log.warning("prune refused for %s: %s", plan.project, plan.refused)
    except NightwheelsError as exc:  # e.g. PruneAborted: nothing was removed
        result.errors.append(f"prune: {exc.message}")
        log.error("prune aborted: %s", exc.message)
    for name, step in (
        ("sessions", lambda: upload_sessions.expire_sessions(services)),
        ("gc", lambda: gc.collect(services, actor)),
        ("notify", lambda: freshness.notify(services, actor, notifiers)),
        (
            "alerts",
            lambda: upstream_alerts.run_alerts(
                services, actor, senders or {}, dry_run=services.settings.notify_dry_run
            ),
        ),
    ):
        try:
            value = step()
        except Exception as exc:  # keep the server's maintenance going
            result.errors.append(f"{name}: {exc}")
            log.exception("maintenance step %s failed", name)
            continue
        if name == "gc":
            result.gc = value  # type: ignore[assignment]
        elif name == "sessions":
            result.expired_sessions = value  # type: ignore[assignment]
        elif name == "alerts":
            result.alerts = value  # type: ignore[assignment]
        else:
            result.notices = value  # type: ignore[assignment]

    def record(session: Session) -> None:
        audit.record(
            session,
            actor,
            "maintenance.run",
            started=started.isoformat(),
            seconds=round(time.monotonic() - clock, 3),
            cpu_seconds=round(time.process_time() - cpu, 3),
            pruned=result.prune.removed_count if result.prune else None,
            refused=[p.project for p in result.prune.plan.refused] if result.prune else [],
            purged_rows=result.gc.purged_rows if result.gc else None,
            deleted_blobs=len(result.gc.deleted) if result.gc else None,
            notices=len(result.notices),
            errors=result.errors,
        )

    services.db.run_write(record)
    return result
