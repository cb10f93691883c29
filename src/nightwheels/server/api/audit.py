"""The audit log, newest first, paged by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from nightwheels.core.names import normalize_name
from nightwheels.errors import Forbidden
from nightwheels.server.api.deps import ManagePrincipalDep, ServicesDep
from nightwheels.services import audit
from nightwheels.services.accounts import get_project
from nightwheels.services.auth import require_project_admin

router = APIRouter(tags=["audit"])


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
    with services.db.read() as session:
        name = normalize_name(project) if project is not None else None
        if not principal.is_admin or principal.projects is not None:
            if name is None:
                raise Forbidden(
                    "only site admins may read the whole audit log: name a project you admin"
                )
            require_project_admin(
                session, principal, get_project(session, name), "read its audit log"
            )
        events = audit.list_events(
            session,
            audit.EventQuery(project=name, action=action, actor=actor, before=before, limit=limit),
        )
        out = [EventOut(**audit.event_dict(e)) for e in events]
    next_before = out[-1].id if len(out) == limit else None
    return EventPage(events=out, next_before=next_before)
