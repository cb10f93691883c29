"""Who is calling: from a token string to a :class:`Principal`, and what it may do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.permissions import Permission, role_allows, token_allows
from nightwheels.core.tokens import split_token, token_matches
from nightwheels.db.models import Project, ProjectRole, Token, User, utcnow
from nightwheels.errors import Forbidden, Unauthenticated
from nightwheels.services.audit import Actor

# Warn in upload responses when the token expires within this window.
EXPIRY_WARNING = timedelta(days=14)
# ``last_used_at`` is written at most this often per token (it costs a write).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    user_id: int
    user_name: str
    is_admin: bool
    token_id: int
    token_name: str
    permissions: frozenset[str]
    projects: frozenset[str] | None
    expires_at: datetime | None
    source: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.user_name, source=self.source)

    def expiry_warning(self, now: datetime | None = None) -> str | None:
        if self.expires_at is None:
            return None
        left = self.expires_at - (now or utcnow())
        if left > EXPIRY_WARNING:
            return None
        days = max(0, left.days)
        return (
            f"token {self.token_name!r} expires in {days} day{'s' if days != 1 else ''} "
            f"({self.expires_at:%Y-%m-%d}): create a new one and update your CI secret"
        )


def authenticate(session: Session, token: str, source: str | None = None) -> Principal:
    """Resolve a token; raise :class:`Unauthenticated` saying why it is refused."""
    prefix = split_token(token)
    if prefix is None:
        raise Unauthenticated("invalid token: not a nightwheels token")
    row = session.execute(select(Token).where(Token.prefix == prefix)).scalar_one_or_none()
    if row is None or not token_matches(token, row.digest):
        raise Unauthenticated("invalid token")
    if row.revoked_at is not None:
        raise Unauthenticated(f"token {row.name!r} was revoked on {row.revoked_at:%Y-%m-%d}")
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated(f"token {row.name!r} expired on {row.expires_at:%Y-%m-%d}")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("the account that owns this token is disabled")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return Principal(
        user_id=user.id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id=row.id,
        token_name=row.name,
        permissions=frozenset(row.permissions),
        projects=None if row.projects is None else frozenset(row.projects),
        expires_at=row.expires_at,
        source=source,
    )


def user_role(session: Session, user_id: int, project_id: int) -> str | None:
    return session.execute(
        select(ProjectRole.role).where(
            ProjectRole.user_id == user_id, ProjectRole.project_id == project_id
        )
    ).scalar_one_or_none()


def require_upload(session: Session, principal: Principal, project_name: str) -> Project | None:
    """Check that ``principal`` may upload to ``project_name``; return the project if it exists.

    A project that does not exist yet may be created by a site admin whose token names it
    (the SPEC's "first upload creates the listing"); others need a role on an existing one.
    """
    if not token_allows(principal.permissions, principal.projects, project_name, Permission.UPLOAD):
        scope = ", ".join(sorted(principal.projects or [])) or "no project"
        raise Forbidden(
            f"token {principal.token_name!r} may not upload to {project_name!r} "
            f"(it is scoped to: {scope})"
        )
    project = session.execute(
        select(Project).where(Project.name == project_name)
    ).scalar_one_or_none()
    if project is None:
        if principal.is_admin:
            return None
        raise Forbidden(
            f"project {project_name!r} does not exist on this index; request access to create it"
        )
    if not role_allows(user_role(session, principal.user_id, project.id), Permission.UPLOAD):
        raise Forbidden(f"user {principal.user_name!r} is not a member of project {project_name!r}")
    return project
