"""Who is calling: from a token string to a :class:`Principal`, and what it may do.

Every permission rule of the API is checked here (or by a service calling these), once:
token scope (``upload`` or ``manage``, project list), the user's role, site admin status.
Refusals are :class:`Forbidden` errors whose message says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from nightwheels.core.permissions import Permission, role_allows, token_allows
from nightwheels.core.tokens import expiry_warning, split_token, token_matches
from nightwheels.db.engine import Database
from nightwheels.db.models import Project, ProjectRole, Token, TrustedPublisher, User, utcnow
from nightwheels.errors import Forbidden, NotFound, Unauthenticated
from nightwheels.services.audit import Actor

# Warn (upload responses, token lists, the notifier) when a token expires within this window.
EXPIRY_WARNING = timedelta(days=14)
# ``last_used_at`` is written at most this often per token (it costs a write).
LAST_USED_RESOLUTION = timedelta(minutes=1)


# Statements on the path of every authenticated request, built once: building a statement
# (and its cache key) costs more than running it. Values are bound per execution.
_TOKEN_AND_USER = (
    select(Token, User)
    .outerjoin(User, User.id == Token.user_id)
    .where(Token.prefix == bindparam("prefix"))
)
# A project and the caller's role on it, in one query (run twice per upload).
_PROJECT_AND_ROLE = (
    select(Project, ProjectRole.role)
    .outerjoin(
        ProjectRole,
        (ProjectRole.project_id == Project.id) & (ProjectRole.user_id == bindparam("user_id")),
    )
    .where(Project.name == bindparam("name"))
)
# The same, locking the project's row for the caller's write transaction (PostgreSQL).
_PROJECT_AND_ROLE_LOCKED = _PROJECT_AND_ROLE.with_for_update(of=Project.__table__)


@dataclass(frozen=True)
class Principal:
    """The caller: a user acting through one of their tokens, or a trusted publisher."""

    user_id: int | None  # None for a trusted publisher's short-lived token
    user_name: str
    is_admin: bool
    token_id: int
    token_name: str
    permissions: frozenset[str]
    projects: frozenset[str] | None
    expires_at: datetime | None
    source: str | None = None
    publisher_id: int | None = None
    organisation: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.user_name, source=self.source)

    @property
    def can_manage(self) -> bool:
        return Permission.MANAGE.value in self.permissions and self.user_id is not None

    def expiry_warning(self, now: datetime | None = None) -> str | None:
        if self.publisher_id is not None:  # minted for one CI job; expiry is the point
            return None
        return expiry_warning(self.token_name, self.expires_at, now or utcnow(), EXPIRY_WARNING)


def _authenticate(
    session: Session, token: str, source: str | None
) -> tuple[Principal, datetime | None]:
    """The principal, and when the token was last used (one query for a user's token)."""
    prefix = split_token(token)
    if prefix is None:
        raise Unauthenticated("invalid token: not a nightwheels token")
    found = session.execute(_TOKEN_AND_USER, {"prefix": prefix}).one_or_none()
    if found is None or not token_matches(token, found[0].digest):
        raise Unauthenticated("invalid token")
    row, user = found
    if row.revoked_at is not None:
        raise Unauthenticated(f"token {row.name!r} was revoked on {row.revoked_at:%Y-%m-%d}")
    now = utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthenticated(
            f"token {row.name!r} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC: create a new one"
        )
    if row.user_id is None:
        publisher = session.get(TrustedPublisher, row.publisher_id) if row.publisher_id else None
        if publisher is None:
            raise Unauthenticated("the trusted publisher of this token was removed")
        principal = Principal(
            user_id=None,
            user_name=publisher_name(publisher),
            is_admin=False,
            token_id=row.id,
            token_name=row.name,
            permissions=frozenset(row.permissions) & {Permission.UPLOAD.value},
            projects=frozenset(row.projects or []),
            expires_at=row.expires_at,
            source=source,
            publisher_id=publisher.id,
        )
        return principal, row.last_used_at
    if user is None or user.disabled:
        raise Unauthenticated("the account that owns this token is disabled")
    principal = Principal(
        user_id=user.id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id=row.id,
        token_name=row.name,
        permissions=frozenset(row.permissions),
        projects=None if row.projects is None else frozenset(row.projects),
        expires_at=row.expires_at,
        source=source,
        organisation=user.organisation,
    )
    return principal, row.last_used_at


def authenticate(session: Session, token: str, source: str | None = None) -> Principal:
    """Resolve a token; raise :class:`Unauthenticated` saying why it is refused."""
    return _authenticate(session, token, source)[0]


def authenticate_token(db: Database, token: str, source: str | None = None) -> Principal:
    """Authenticate in a read transaction; record ``last_used_at`` only when it is stale.

    Most requests write nothing, so authenticated requests do not queue on the SQLite
    write lock; ``last_used_at`` is accurate to ``LAST_USED_RESOLUTION``.
    """
    with db.lookup() as session:
        principal, last_used = _authenticate(session, token, source)
    now = utcnow()
    if last_used is None or now - last_used > LAST_USED_RESOLUTION:
        db.run_write(
            lambda session: session.execute(
                update(Token).where(Token.id == principal.token_id).values(last_used_at=now)
            )
        )
    return principal


def publisher_name(publisher: TrustedPublisher) -> str:
    """How a trusted publisher appears as an actor (audit log, uploader)."""
    return f"{publisher.provider}:{publisher.repository}"


def user_role(session: Session, user_id: int | None, project_id: int) -> str | None:
    if user_id is None:
        return None
    return session.execute(
        select(ProjectRole.role).where(
            ProjectRole.user_id == user_id, ProjectRole.project_id == project_id
        )
    ).scalar_one_or_none()


def require_manage(principal: Principal) -> None:
    """Management (members, tokens, requests, publishers) needs a ``manage`` token."""
    if principal.publisher_id is not None:
        raise Forbidden("a trusted publisher's token can only upload")
    if not principal.can_manage:
        kind = "a report" if Permission.REPORT.value in principal.permissions else "an upload"
        raise Forbidden(
            f"token {principal.token_name!r} is {kind} token: managing needs a token "
            "with the manage permission"
        )


def require_site_admin(principal: Principal, action: str) -> None:
    require_manage(principal)
    if not principal.is_admin:
        raise Forbidden(f"only site admins may {action}; {principal.user_name!r} is not one")
    if principal.projects is not None:
        raise Forbidden(
            f"token {principal.token_name!r} is scoped to projects; {action} needs an "
            "unscoped manage token"
        )


def require_token_scope(principal: Principal, project: str) -> None:
    if principal.projects is not None and project not in principal.projects:
        scope = ", ".join(sorted(principal.projects)) or "no project"
        raise Forbidden(
            f"token {principal.token_name!r} is not scoped to {project!r} (it is scoped to: "
            f"{scope})"
        )


def require_project_admin(
    session: Session, principal: Principal, project: Project, action: str
) -> None:
    """Project admins (and site admins) manage a project, through a ``manage`` token."""
    require_manage(principal)
    require_token_scope(principal, project.name)
    if principal.is_admin:
        return
    role = user_role(session, principal.user_id, project.id)
    if not role_allows(role, Permission.MANAGE):
        held = f"is {role} of" if role else "is not a member of"
        raise Forbidden(
            f"only admins of project {project.name!r} may {action}; "
            f"{principal.user_name!r} {held} it"
        )


def require_upload(
    session: Session, principal: Principal, project_name: str, *, lock: bool = False
) -> Project | None:
    """Check that ``principal`` may upload to ``project_name``; return the project if it exists.

    ``lock``: also lock the project's row until the transaction ends, in the same statement.

    A project that does not exist yet may be created by a site admin whose token names it
    (the SPEC's "first upload creates the listing"); others need a role on an existing one,
    checked on every request so that removing a member takes effect at once.
    """
    if not token_allows(principal.permissions, principal.projects, project_name, Permission.UPLOAD):
        if Permission.UPLOAD.value not in principal.permissions:
            raise Forbidden(
                f"token {principal.token_name!r} has no upload permission: use an upload token"
            )
        scope = ", ".join(sorted(principal.projects or [])) or "no project"
        raise Forbidden(
            f"token {principal.token_name!r} may not upload to {project_name!r} "
            f"(it is scoped to: {scope})"
        )
    found = session.execute(
        _PROJECT_AND_ROLE_LOCKED if lock else _PROJECT_AND_ROLE,
        {"name": project_name, "user_id": principal.user_id},
    ).one_or_none()
    project, role = found if found is not None else (None, None)
    if principal.publisher_id is not None:
        # Its scope (checked above) is the projects whose registrations accepted the OIDC
        # token; removing a registration takes its project out of the scope at once.
        publisher = session.get(TrustedPublisher, principal.publisher_id)
        if project is None or publisher is None:
            raise Forbidden(
                f"{principal.user_name} is not a trusted publisher of project {project_name!r}"
            )
        return project
    if project is None:
        if principal.is_admin:
            return None
        raise Forbidden(
            f"project {project_name!r} does not exist on this index; request access to create it"
        )
    if not role_allows(role, Permission.UPLOAD):
        raise Forbidden(f"user {principal.user_name!r} is not a member of project {project_name!r}")
    return project


def operator_principal(db: Database, owner: str, source: str) -> Principal:
    """The server machine's administrator acting as ``owner`` (local commands such as
    ``mirror`` and ``admin publish``): whoever holds the database is the authority; the audit
    log records ``owner`` and ``source``. Never reachable from a request."""
    with db.read() as session:
        user = session.execute(select(User).where(User.name == owner)).scalar_one_or_none()
        if user is None:
            raise NotFound(
                f"no user named {owner!r}: create one (nightwheels admin user create {owner}) "
                "or name an existing user"
            )
        return Principal(
            user_id=user.id,
            user_name=user.name,
            is_admin=True,
            token_id=0,
            token_name=source,
            permissions=frozenset({Permission.UPLOAD.value}),
            projects=None,
            expires_at=None,
            source=source,
        )
