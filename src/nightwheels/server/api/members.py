"""Project members and roles (admin, uploader), with representation warnings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from nightwheels.core.permissions import Role
from nightwheels.server.api.deps import AuthFirstRoute, ManagePrincipalDep, ServicesDep
from nightwheels.services import members
from nightwheels.services.accounts import get_project
from nightwheels.services.members import Membership

router = APIRouter(tags=["members"], route_class=AuthFirstRoute)

ProjectPath = Annotated[str, Path(min_length=1, max_length=200)]
UserPath = Annotated[str, Path(min_length=1, max_length=100)]


class MemberOut(BaseModel):
    user: str
    organisation: str | None
    role: Role
    since: datetime


class MembershipOut(BaseModel):
    project: str
    members: list[MemberOut]
    warnings: list[str] = Field(
        description="fewer than two admins, or all admins from one organisation"
    )

    @classmethod
    def of(cls, m: Membership) -> MembershipOut:
        return cls(
            project=m.project,
            members=[MemberOut(**x.__dict__) for x in m.members],
            warnings=m.warnings,
        )


class RoleBody(BaseModel):
    role: Role = Role.UPLOADER


class TransferBody(BaseModel):
    user: str = Field(min_length=1, max_length=100)


@router.get("/projects/{name}/members")
def list_members(name: ProjectPath, services: ServicesDep) -> MembershipOut:
    """Public, like the project page: who answers for a project's nightly wheels."""
    with services.db.read() as session:
        return MembershipOut.of(members.members(session, get_project(session, name)))


@router.put("/projects/{name}/members/{user}")
def set_member(
    name: ProjectPath,
    user: UserPath,
    body: RoleBody,
    principal: ManagePrincipalDep,
    services: ServicesDep,
) -> MembershipOut:
    result = services.db.run_write(
        lambda s: members.set_member(s, principal.actor, name, user, body.role, principal)
    )
    return MembershipOut.of(result)


@router.delete("/projects/{name}/members/{user}")
def remove_member(
    name: ProjectPath, user: UserPath, principal: ManagePrincipalDep, services: ServicesDep
) -> MembershipOut:
    result = services.db.run_write(
        lambda s: members.remove_member(s, principal.actor, name, user, principal)
    )
    return MembershipOut.of(result)


@router.post("/projects/{name}/transfer")
def transfer_admin(
    name: ProjectPath, body: TransferBody, principal: ManagePrincipalDep, services: ServicesDep
) -> MembershipOut:
    result = services.db.run_write(
        lambda s: members.transfer_admin(s, principal.actor, name, body.user, principal)
    )
    return MembershipOut.of(result)
