"""Marking a project active, archived, deprecated or quarantined (PEP 792).

Project admins and site admins set a status through a ``manage`` token; only a site
admin lifts a quarantine (a compromised project's admins must not undo it). Every
change is audited and bumps the project's serial, so every page shows it at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from nightwheels.core.project_status import MAX_REASON_LENGTH, ProjectStatus
from nightwheels.errors import Forbidden, InvalidRequest
from nightwheels.services import audit, serials
from nightwheels.services.accounts import get_project
from nightwheels.services.auth import Principal, require_project_admin
from nightwheels.services.context import Services

__all__ = ["StatusView", "get_status", "set_status"]


@dataclass(frozen=True)
class StatusView:
    project: str
    status: str
    reason: str | None


def _parse(status: str) -> ProjectStatus:
    try:
        return ProjectStatus(status)
    except ValueError:
        choices = ", ".join(s.value for s in ProjectStatus)
        raise InvalidRequest(f"status {status!r} is not one of: {choices}") from None


def _check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidRequest(f"the reason is longer than {MAX_REASON_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in reason):
        raise InvalidRequest("the reason must be one line of text, without control characters")
    return reason


def get_status(session: Session, name: str) -> StatusView:
    project = get_project(session, name)
    return StatusView(project.name, project.status, project.status_reason)


def set_status(
    services: Services, principal: Principal, name: str, status: str, reason: str | None
) -> StatusView:
    new = _parse(status)
    reason = _check_reason(reason)

    def run(session: Session, changes: serials.Changes) -> StatusView:
        project = get_project(session, name)
        require_project_admin(session, principal, project, "change its status")
        quarantined = ProjectStatus.QUARANTINED
        if project.status == quarantined and new != quarantined and not principal.is_admin:
            raise Forbidden(
                f"project {project.name!r} is quarantined: only a site admin may lift it"
            )
        if (project.status, project.status_reason) != (new.value, reason):
            audit.record(
                session,
                principal.actor,
                "project.status",
                project=project.name,
                status=new.value,
                previous=project.status,
                reason=reason,
                token=principal.token_name,
            )
            project.status, project.status_reason = new.value, reason
            session.flush()
            changes.bump(project)
        return StatusView(project.name, project.status, project.status_reason)

    return serials.write(services, run)
