"""A project's PEP 792 status: read by anyone, set by its admins (and site admins)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from nightwheels.core.project_status import MAX_REASON_LENGTH, ProjectStatus
from nightwheels.server.api.deps import ManagePrincipalDep, ServicesDep
from nightwheels.services import project_status
from nightwheels.services.project_status import StatusView

router = APIRouter(tags=["projects"])

ProjectPath = Annotated[str, Path(min_length=1, max_length=200)]


class StatusOut(BaseModel):
    project: str
    status: ProjectStatus
    reason: str | None

    @classmethod
    def of(cls, view: StatusView) -> StatusOut:
        return cls(project=view.project, status=ProjectStatus(view.status), reason=view.reason)


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ProjectStatus
    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


@router.get("/projects/{name}/status")
def get_status(name: ProjectPath, services: ServicesDep) -> StatusOut:
    """Public, as the simple pages show it."""
    with services.db.read() as session:
        return StatusOut.of(project_status.get_status(session, name))


@router.put("/projects/{name}/status")
def set_status(
    name: ProjectPath, body: StatusBody, principal: ManagePrincipalDep, services: ServicesDep
) -> StatusOut:
    """Archived and quarantined projects refuse uploads; quarantined ones list no files.
    Only a site admin lifts a quarantine."""
    view = project_status.set_status(services, principal, name, body.status.value, body.reason)
    return StatusOut.of(view)
