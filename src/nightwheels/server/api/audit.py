"""The audit log, newest first, paged by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from nightwheels.server.api.deps import AuthFirstRoute, ManagePrincipalDep, ServicesDep
from nightwheels.services import audit

router = APIRouter(tags=["audit"], route_class=AuthFirstRoute)


class EventOut(BaseModel):
    id: int
    at: datetime
    actor: str | None
    action: str
    project: str | None
    target: str | None
    source: str | None
    details: dict[str, Any]


class EventPage(BaseModel):
    events: list[EventOut]
    next_before: int | None  # pass as ``before`` for the next (older) page


@router.get("/audit")
def list_events(
    principal: ManagePrincipalDep,
    services: ServicesDep,
    project: str | None = Query(None, max_length=200),
    action: str | None = Query(None, max_length=50, description="exact, or a prefix like 'token.'"),
    actor: str | None = Query(None, max_length=200),
    before: int | None = Query(None, ge=1, le=2**62),
    limit: int = Query(100, ge=1, le=audit.MAX_PAGE),
) -> EventPage:
    """Site admins see every event; project admins see their project's (name it)."""
    query = audit.EventQuery(
        project=project, action=action, actor=actor, before=before, limit=limit
    )
    with services.db.read() as session:
        out = [
            EventOut(**audit.event_dict(e)) for e in audit.read_events(session, principal, query)
        ]
    next_before = out[-1].id if len(out) == limit else None
    return EventPage(events=out, next_before=next_before)
