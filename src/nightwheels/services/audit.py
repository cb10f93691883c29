"""The append-only audit log: every privileged action is recorded here.

Events are written in the transaction of the change they describe (so an event exists iff
the change happened) and are never updated or deleted (``db.models`` refuses it). Reading
pages backwards by id: ``before`` is the smallest id of the previous page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.db.models import AuditEvent, utcnow
from nightwheels.db.queries import project_by_name
from nightwheels.errors import Forbidden, NotFound

if TYPE_CHECKING:
    from nightwheels.services.auth import Principal

MAX_PAGE = 500


_INSERT = insert(AuditEvent.__table__)


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where (for the audit log)."""

    name: str | None
    source: str | None = None


SYSTEM = Actor(name="system", source="local")


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    project: str | None = None,
    target: str | None = None,
    **details: Any,
) -> None:
    # A plain INSERT now, not an ORM object flushed later: events are never read back or
    # changed through the session, and this skips a unit-of-work flush on every upload.
    session.execute(
        _INSERT,
        {
            "at": utcnow(),
            "actor": actor.name,
            "source": actor.source,
            "action": action,
            "project": project,
            "target": target,
            "details": details,
        },
    )


def record_each(
    session: Session,
    actor: Actor,
    action: str,
    events: Sequence[tuple[str | None, dict[str, Any]]],
) -> None:
    """:func:`record` one ``action`` per ``(project, details)``, in one statement (a prune
    records one event for each of dozens of projects per transaction)."""
    if not events:
        return
    at = utcnow()
    session.execute(
        _INSERT,
        [
            {
                "at": at,
                "actor": actor.name,
                "source": actor.source,
                "action": action,
                "project": project,
                "target": None,
                "details": details,
            }
            for project, details in events
        ],
    )


@dataclass(frozen=True)
class EventQuery:
    project: str | None = None
    projects: frozenset[str] | None = None  # restrict to these (a project admin's view)
    action: str | None = None  # exact, or a prefix ending in "." (e.g. "token.")
    actor: str | None = None
    since: datetime | None = None
    before: int | None = None  # id cursor: events with a smaller id
    limit: int = 100


def list_events(session: Session, query: EventQuery) -> list[AuditEvent]:
    """Newest first, at most ``query.limit`` (capped at :data:`MAX_PAGE`)."""
    stmt = select(AuditEvent).order_by(AuditEvent.id.desc())
    if query.project is not None:
        stmt = stmt.where(AuditEvent.project == query.project)
    if query.projects is not None:
        stmt = stmt.where(AuditEvent.project.in_(sorted(query.projects)))
    if query.action:
        if query.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(query.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == query.action)
    if query.actor is not None:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.at >= query.since)
    if query.before is not None:
        stmt = stmt.where(AuditEvent.id < query.before)
    limit = max(1, min(query.limit, MAX_PAGE))
    return list(session.execute(stmt.limit(limit)).scalars())


def read_events(session: Session, principal: Principal, query: EventQuery) -> list[AuditEvent]:
    """Who reads the audit log, whichever edge asks (API, web): site admins through an
    unscoped manage token or a web session read all of it; a project's admins read that
    project's events, naming it (a token scoped to projects only within its scope)."""
    # Imported here: ``services.auth`` imports :class:`Actor` from this module.
    from nightwheels.services.auth import require_manage, require_project_admin

    require_manage(principal)
    if query.project is not None:
        query = replace(query, project=normalize_name(query.project))
    if principal.is_admin and principal.projects is None:
        return list_events(session, query)
    if query.project is None:
        raise Forbidden("only site admins may read the whole audit log: name a project you admin")
    project = project_by_name(session, query.project)
    if project is None:
        raise NotFound(f"no project named {query.project!r}")
    require_project_admin(session, principal, project, "read its audit log")
    return list_events(session, query)


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "project": event.project,
        "target": event.target,
        "source": event.source,
        "details": event.details or {},
    }
