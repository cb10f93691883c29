"""Project membership: who may upload to and manage a project.

A project always keeps at least one admin. Roles are checked on every upload, so removing
a member takes effect at once, through every token they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightwheels.core.access import representation_warnings
from nightwheels.core.permissions import Role
from nightwheels.db.models import Project, ProjectRole, User
from nightwheels.errors import Conflict, InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.accounts import get_project, get_user, set_role
from nightwheels.services.audit import Actor
from nightwheels.services.auth import (
    Principal,
    require_manage,
    require_project_admin,
    require_token_scope,
)


@dataclass(frozen=True)
class Member:
    user: str
    organisation: str | None
    role: str
    since: datetime


@dataclass(frozen=True)
class Membership:
    project: str
    members: list[Member]
    warnings: list[str]


def _parse_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidRequest(f"{role!r} is not a role: use admin or uploader") from None


def members(session: Session, project: Project) -> Membership:
    rows = session.execute(
        select(ProjectRole, User)
        .join(User, User.id == ProjectRole.user_id)
        .where(ProjectRole.project_id == project.id)
        .order_by(ProjectRole.role, User.name)
    ).all()
    listed = [Member(u.name, u.organisation, r.role, r.created_at) for r, u in rows]
    admins = [(m.user, m.organisation) for m in listed if m.role == Role.ADMIN.value]
    return Membership(project.name, listed, representation_warnings(project.name, admins))


def _admin_count(session: Session, project: Project) -> int:
    return session.execute(
        select(func.count(ProjectRole.id)).where(
            ProjectRole.project_id == project.id, ProjectRole.role == Role.ADMIN.value
        )
    ).scalar_one()


def _role_row(session: Session, user: User, project: Project) -> ProjectRole | None:
    return session.execute(
        select(ProjectRole).where(
            ProjectRole.user_id == user.id, ProjectRole.project_id == project.id
        )
    ).scalar_one_or_none()


def _authorise(
    session: Session, principal: Principal | None, project: Project, action: str
) -> None:
    if principal is not None:  # None: the local admin on the server machine
        require_project_admin(session, principal, project, action)


def _keep_an_admin(session: Session, project: Project, row: ProjectRole, action: str) -> None:
    if row.role == Role.ADMIN.value and _admin_count(session, project) <= 1:
        raise Conflict(
            f"cannot {action}: {project.name!r} would have no admin left; add another admin "
            "first (or transfer admin)"
        )


def set_member(
    session: Session,
    actor: Actor,
    project_name: str,
    user_name: str,
    role: str,
    principal: Principal | None = None,
) -> Membership:
    """Add a member, or change a member's role (``admin`` or ``uploader``)."""
    wanted = _parse_role(role)
    project = get_project(session, project_name)
    _authorise(session, principal, project, "add or change members")
    user = get_user(session, user_name)
    if user.disabled:
        raise Conflict(f"the account {user.name!r} is disabled")
    row = _role_row(session, user, project)
    if row is not None and row.role != wanted.value:
        _keep_an_admin(session, project, row, f"make {user.name!r} an {wanted.value}")
    set_role(session, actor, user, project, wanted)
    return members(session, project)


def remove_member(
    session: Session,
    actor: Actor,
    project_name: str,
    user_name: str,
    principal: Principal | None = None,
) -> Membership:
    """Remove a member (admins remove anyone; anyone may leave), never the last admin."""
    project = get_project(session, project_name)
    user = get_user(session, user_name)
    leaving = principal is not None and principal.user_id == user.id
    if leaving:
        assert principal is not None
        require_manage(principal)
        # A token scoped to other projects never acts on its owner here (issue 14, item 1).
        require_token_scope(principal, project.name)
    else:
        _authorise(session, principal, project, "remove members")
    row = _role_row(session, user, project)
    if row is None:
        raise NotFound(f"{user.name!r} is not a member of {project.name!r}")
    _keep_an_admin(session, project, row, f"remove {user.name!r}")
    session.delete(row)
    session.flush()
    audit.record(
        session, actor, "role.remove", project=project.name, target=user.name, role=row.role
    )
    return members(session, project)


def transfer_admin(
    session: Session,
    actor: Actor,
    project_name: str,
    to_user: str,
    principal: Principal | None = None,
    from_user: str | None = None,
) -> Membership:
    """Hand the admin role from the caller (or ``from_user``, local admin) to ``to_user``.

    The new admin gains the role before the old one steps down to uploader, so the project
    is never without an admin.
    """
    project = get_project(session, project_name)
    _authorise(session, principal, project, "transfer admin")
    if principal is not None:
        if from_user is not None and from_user != principal.user_name:
            raise InvalidRequest("you can only transfer your own admin role")
        from_user = principal.user_name
    if from_user is None:
        raise InvalidRequest("name the admin who hands over (--from)")
    giver = get_user(session, from_user)
    receiver = get_user(session, to_user)
    if receiver.disabled:
        raise Conflict(f"the account {receiver.name!r} is disabled")
    if giver.id == receiver.id:
        raise InvalidRequest("transfer admin to someone else")
    giver_row = _role_row(session, giver, project)
    if giver_row is None or giver_row.role != Role.ADMIN.value:
        raise Conflict(
            f"{giver.name!r} is not an admin of {project.name!r}: use 'members add --role "
            "admin' instead"
        )
    set_role(session, actor, receiver, project, Role.ADMIN)
    set_role(session, actor, giver, project, Role.UPLOADER)
    audit.record(
        session,
        actor,
        "role.transfer",
        project=project.name,
        target=receiver.name,
        previous_admin=giver.name,
    )
    return members(session, project)
