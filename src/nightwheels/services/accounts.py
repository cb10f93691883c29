"""Users and tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import TOKEN_PERMISSIONS, Role
from nightwheels.core.tokens import generate_token
from nightwheels.db.models import Project, ProjectRole, Token, User, utcnow
from nightwheels.errors import Conflict, InvalidRequest, NotFound
from nightwheels.services import audit, serials
from nightwheels.services.audit import Actor


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    prefix: str
    secret: str  # shown once, never stored
    projects: list[str] | None
    permissions: list[str]
    expires_at: datetime | None


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def create_user(
    session: Session,
    actor: Actor,
    name: str,
    *,
    email: str | None = None,
    organisation: str | None = None,
    is_admin: bool = False,
) -> User:
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest(f"{name!r} is not a valid user name: use letters, digits, - and _")
    if session.execute(select(User.id).where(User.name == name)).first():
        raise Conflict(f"a user named {name!r} already exists")
    user = User(name=name, email=email, organisation=organisation, is_admin=is_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    audit.record(session, actor, "user.create", target=name, admin=is_admin)
    return user


def get_or_create_project(session: Session, actor: Actor, name: str) -> Project:
    normalized = normalize_name(name)
    project = session.execute(
        select(Project).where(Project.name == normalized)
    ).scalar_one_or_none()
    if project is None:
        project = Project(name=normalized, display_name=name)
        session.add(project)
        session.flush()
        serials.bump(session, project)
        audit.record(session, actor, "project.create", project=normalized)
    return project


def set_role(session: Session, actor: Actor, user: User, project: Project, role: Role) -> None:
    existing = session.execute(
        select(ProjectRole).where(
            ProjectRole.user_id == user.id, ProjectRole.project_id == project.id
        )
    ).scalar_one_or_none()
    if existing is None:
        session.add(ProjectRole(user_id=user.id, project_id=project.id, role=role.value))
    elif existing.role == role.value:
        return
    else:
        existing.role = role.value
    audit.record(
        session, actor, "role.set", project=project.name, target=user.name, role=role.value
    )


def create_token(
    session: Session,
    actor: Actor,
    user: User,
    *,
    name: str,
    projects: list[str] | None,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedToken:
    permissions = sorted(set(permissions or ["upload"]))
    unknown = set(permissions) - TOKEN_PERMISSIONS
    if unknown:
        raise InvalidRequest(f"unknown token permission(s): {', '.join(sorted(unknown))}")
    if "upload" in permissions and not projects:
        raise InvalidRequest("an upload token must be scoped to at least one project")
    normalized = sorted({normalize_name(p) for p in projects}) if projects else None
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("the expiry date must be in the future")
    new = generate_token()
    row = Token(
        user_id=user.id,
        name=name,
        prefix=new.prefix,
        digest=new.digest,
        permissions=permissions,
        projects=normalized,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        target=f"{user.name}/{name}",
        prefix=new.prefix,
        projects=normalized,
        permissions=permissions,
    )
    return CreatedToken(row.id, name, new.prefix, new.secret, normalized, permissions, expires_at)


def revoke_token(session: Session, actor: Actor, prefix: str) -> Token:
    row = session.execute(select(Token).where(Token.prefix == prefix)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no token with prefix {prefix!r}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor, "token.revoke", target=row.name, prefix=prefix)
    return row
