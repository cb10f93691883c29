"""API tokens: create, list, revoke, rotate, and find the ones about to expire.

A token is personal (it acts for its owner, whose roles are checked on every request) and
either an ``upload`` token scoped to named projects or a ``manage`` token for the API.
Only the SHA-256 of a token is stored; the secret is returned once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import TOKEN_PERMISSIONS, Permission, role_allows, scope_within
from nightwheels.core.tokens import expiry_warning, generate_token, validate_token_name
from nightwheels.db.models import Project, ProjectRole, Token, TrustedPublisher, User, utcnow
from nightwheels.db.queries import project_by_name
from nightwheels.errors import Conflict, Forbidden, InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.audit import Actor
from nightwheels.services.auth import (
    EXPIRY_WARNING,
    Principal,
    publisher_name,
    require_manage,
    require_project_admin,
    user_role,
)


@dataclass(frozen=True)
class CreatedToken:
    id: int
    name: str
    prefix: str
    secret: str  # shown once, never stored
    projects: list[str] | None
    permissions: list[str]
    expires_at: datetime | None
    owner: str | None = None


@dataclass(frozen=True)
class TokenInfo:
    """What ``token list`` shows: everything but the secret."""

    name: str
    prefix: str
    owner: str
    permissions: list[str]
    projects: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    warning: str | None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utcnow():
            return "expired"
        return "active"


@dataclass(frozen=True)
class ExpiringToken:
    """A token the notifier should warn its owner about."""

    user: str
    email: str | None
    name: str
    prefix: str
    projects: list[str] | None
    expires_at: datetime
    message: str


def _owner_name(session: Session, row: Token) -> str:
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        return user.name if user else "?"
    publisher = session.get(TrustedPublisher, row.publisher_id) if row.publisher_id else None
    return publisher_name(publisher) if publisher else "?"


def token_info(session: Session, row: Token, now: datetime | None = None) -> TokenInfo:
    now = now or utcnow()
    warning = None
    if row.revoked_at is None and row.publisher_id is None:
        warning = expiry_warning(row.name, row.expires_at, now, EXPIRY_WARNING)
    return TokenInfo(
        name=row.name,
        prefix=row.prefix,
        owner=_owner_name(session, row),
        permissions=list(row.permissions),
        projects=None if row.projects is None else list(row.projects),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        warning=warning,
    )


def _audit_project(projects: list[str] | None) -> str | None:
    """A token event belongs to a project's log when the token reaches just that project."""
    return projects[0] if projects and len(projects) == 1 else None


def _check_permissions(permissions: list[str] | None) -> list[str]:
    chosen = sorted(set(permissions or [Permission.UPLOAD.value]))
    unknown = set(chosen) - TOKEN_PERMISSIONS
    if unknown:
        raise InvalidRequest(
            f"unknown token permission(s): {', '.join(sorted(unknown))}; use upload, manage "
            "or report"
        )
    if len(chosen) > 1:
        raise InvalidRequest(
            "a token has one permission: upload (for CI), manage (for the API) or report "
            "(test results for the compatibility record); create one token for each"
        )
    return chosen


def _check_upload_projects(
    session: Session, user: User, projects: list[str], *, admin_may: bool = True
) -> None:
    """An upload token names projects its owner may upload to (site admins: any name); a
    report token names downstream projects its owner belongs to (site admins too)."""
    if user.is_admin and admin_may:
        return
    for name in projects:
        project = project_by_name(session, name)
        if project is None:
            raise NotFound(
                f"no project named {name!r}: request access to it first (nightwheels access "
                "request)"
            )
        if not role_allows(user_role(session, user.id, project.id), Permission.UPLOAD):
            raise Forbidden(
                f"{user.name!r} is not a member of project {name!r}: a token cannot reach "
                "further than its owner"
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
    creator: Principal | None = None,
) -> CreatedToken:
    """Create a token for ``user``. ``creator`` is the calling token (``None``: local admin)."""
    name = validate_token_name(name)
    chosen = _check_permissions(permissions)
    if Permission.UPLOAD.value in chosen and not projects:
        raise InvalidRequest("an upload token must be scoped to at least one project (--project)")
    normalized = sorted({normalize_name(p) for p in projects}) if projects else None
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidRequest("the expiry date must be in the future")
    if creator is not None:
        require_manage(creator)
        if creator.user_id != user.id:
            raise Forbidden("tokens are personal: you can only create tokens for yourself")
        if not scope_within(creator.projects, set(normalized) if normalized else None):
            raise Forbidden(
                f"token {creator.token_name!r} is scoped to "
                f"{', '.join(sorted(creator.projects or []))}: it cannot create a token that "
                "reaches other projects"
            )
    if user.disabled:
        raise Forbidden(f"the account {user.name!r} is disabled")
    if Permission.UPLOAD.value in chosen and normalized:
        _check_upload_projects(session, user, normalized)
    if Permission.REPORT.value in chosen and normalized:
        _check_upload_projects(session, user, normalized, admin_may=False)
    new = generate_token()
    row = Token(
        user_id=user.id,
        name=name,
        prefix=new.prefix,
        digest=new.digest,
        permissions=chosen,
        projects=normalized,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        "token.create",
        project=_audit_project(normalized),
        target=f"{user.name}/{name}",
        prefix=new.prefix,
        projects=normalized,
        permissions=chosen,
        expires_at=expires_at.isoformat() if expires_at else None,
    )
    return CreatedToken(
        row.id, name, new.prefix, new.secret, normalized, chosen, expires_at, user.name
    )


def get_token(session: Session, prefix: str) -> Token:
    row = session.execute(select(Token).where(Token.prefix == prefix)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no token with prefix {prefix!r}")
    return row


def _project_rows(session: Session, names: list[str]) -> list[Project]:
    return list(session.execute(select(Project).where(Project.name.in_(names))).scalars())


def _require_reach(principal: Principal, row: Token, verb: str) -> None:
    """A token never acts on a token that reaches further than itself (issue 14, item 1).

    A manage token scoped to some projects may only revoke or rotate tokens scoped within
    them: not its owner's unscoped manage token, nor a token for another of their projects.
    """
    target = None if row.projects is None else set(row.projects)
    if not scope_within(principal.projects, target):
        reach = ", ".join(row.projects) if row.projects else "every project"
        raise Forbidden(
            f"token {principal.token_name!r} is scoped to "
            f"{', '.join(sorted(principal.projects or []))}: it cannot {verb} token "
            f"{row.prefix}, which reaches {reach}"
        )


def _may_act_on(session: Session, principal: Principal, row: Token, *, all_projects: bool) -> bool:
    """Owner; or an admin of the token's projects (any of them, or all when ``all_projects``)."""
    if row.user_id is not None and row.user_id == principal.user_id:
        return True
    if not row.projects:  # a manage token: its owner rotates it; a site admin may revoke it
        return principal.is_admin and not all_projects
    allowed = 0
    for project in _project_rows(session, row.projects):
        try:
            require_project_admin(session, principal, project, "manage its tokens")
        except Forbidden:
            continue
        allowed += 1
    return allowed == len(row.projects) if all_projects else allowed > 0


def revoke_token(
    session: Session, actor: Actor, prefix: str, principal: Principal | None = None
) -> Token:
    """Revoke at once. The owner, a site admin or an admin of a project the token reaches may."""
    row = get_token(session, prefix)
    if principal is not None:
        require_manage(principal)
        _require_reach(principal, row, "revoke")
        if not _may_act_on(session, principal, row, all_projects=False):
            raise Forbidden(
                f"token {prefix} is not yours: only its owner or an admin of a project it can "
                "upload to may revoke it"
            )
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        owner = _owner_name(session, row)
        audit.record(
            session,
            actor,
            "token.revoke",
            project=_audit_project(row.projects),
            target=f"{owner}/{row.name}",
            prefix=prefix,
            projects=row.projects,
        )
    return row


def rotate_token(
    session: Session, actor: Actor, prefix: str, principal: Principal | None = None
) -> CreatedToken:
    """Replace a token by a new one with the same name, scope and lifetime; revoke the old.

    Its owner may rotate it, and so may an admin of every project it reaches (so a project
    keeps uploading when the owner is away, without a site admin). A token is personal: the
    new one belongs to whoever rotated it (with ``principal`` ``None``, the local admin, to
    the same owner).
    """
    row = get_token(session, prefix)
    if row.revoked_at is not None:
        raise Conflict(f"token {prefix} is revoked: create a new token instead")
    if row.publisher_id is not None or row.user_id is None:
        raise Conflict("a trusted publisher's token cannot be rotated: it expires in minutes")
    if principal is not None:
        require_manage(principal)
        _require_reach(principal, row, "rotate")
        if not _may_act_on(session, principal, row, all_projects=True):
            raise Forbidden(
                f"token {prefix} is not yours: only its owner or an admin of every project it "
                "can upload to may rotate it"
            )
    owner_id = row.user_id if principal is None else principal.user_id
    owner = session.get(User, owner_id)
    if owner is None:
        raise NotFound("the token's owner no longer exists")
    now = utcnow()
    expires_at = None
    if row.expires_at is not None:
        expires_at = now + max(row.expires_at - row.created_at, timedelta(minutes=5))
    revoke_token(session, actor, prefix)
    created = create_token(
        session,
        actor,
        owner,
        name=row.name,
        projects=row.projects,
        permissions=list(row.permissions),
        expires_at=expires_at,
        creator=principal,  # the same rules as creating it: its reach never grows
    )
    audit.record(
        session,
        actor,
        "token.rotate",
        project=_audit_project(row.projects),
        target=f"{owner.name}/{row.name}",
        prefix=prefix,
        new_prefix=created.prefix,
        projects=row.projects,
    )
    return created


def list_tokens(
    session: Session,
    *,
    user: User | None = None,
    include_inactive: bool = False,
    within: frozenset[str] | None = None,
) -> list[TokenInfo]:
    """A user's tokens (all users' for ``user=None``: local admin), newest first.

    ``within``: only tokens scoped inside these projects (what a scoped token may see).
    """
    stmt = select(Token).order_by(Token.created_at.desc(), Token.id.desc())
    if user is not None:
        stmt = stmt.where(Token.user_id == user.id)
    now = utcnow()
    rows = [
        row
        for row in session.execute(stmt).scalars()
        if within is None
        or scope_within(within, None if row.projects is None else set(row.projects))
    ]
    infos = [token_info(session, row, now) for row in rows]
    return infos if include_inactive else [t for t in infos if t.status == "active"]


def my_tokens(
    session: Session, principal: Principal, *, include_inactive: bool = False
) -> list[TokenInfo]:
    """The caller's own tokens; a scoped token sees only those within its projects."""
    require_manage(principal)
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("the account of this token no longer exists")
    return list_tokens(
        session, user=user, include_inactive=include_inactive, within=principal.projects
    )


def create_own_token(
    session: Session,
    principal: Principal,
    *,
    name: str,
    projects: list[str] | None,
    permissions: list[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedToken:
    """A token for the caller, made through one of their manage tokens (never reaching further)."""
    require_manage(principal)
    user = session.get(User, principal.user_id)
    if user is None:
        raise NotFound("the account of this token no longer exists")
    return create_token(
        session,
        principal.actor,
        user,
        name=name,
        projects=projects,
        permissions=permissions,
        expires_at=expires_at,
        creator=principal,
    )


def project_tokens(
    session: Session, project: Project, principal: Principal | None = None
) -> list[TokenInfo]:
    """Active tokens that can upload to ``project`` (for its admins)."""
    if principal is not None:
        require_project_admin(session, principal, project, "list its tokens")
    member_ids = select(ProjectRole.user_id).where(ProjectRole.project_id == project.id)
    # Minted tokens name one registration of their workflow, maybe another project's (one
    # workflow registered on several projects gets one token for all): every registration
    # of this project's workflows, then the token's own scope decides.
    mine = aliased(TrustedPublisher)
    publisher_ids = (
        select(TrustedPublisher.id)
        .join(
            mine,
            (func.lower(TrustedPublisher.repository) == func.lower(mine.repository))
            & (TrustedPublisher.workflow == mine.workflow),
        )
        .where(mine.project_id == project.id)
    )
    rows = session.execute(
        select(Token)
        .where(
            Token.revoked_at.is_(None),
            Token.user_id.in_(member_ids) | Token.publisher_id.in_(publisher_ids),
        )
        .order_by(Token.created_at.desc())
    ).scalars()
    now = utcnow()
    return [
        token_info(session, row, now)
        for row in rows
        if row.projects
        and project.name in row.projects
        and (row.expires_at is None or row.expires_at > now)
    ]


def expiring_tokens(
    session: Session, within: timedelta = EXPIRY_WARNING, now: datetime | None = None
) -> list[ExpiringToken]:
    """Active personal tokens that expire within ``within``: for the notifier."""
    now = now or utcnow()
    rows = session.execute(
        select(Token, User)
        .join(User, User.id == Token.user_id)
        .where(
            Token.revoked_at.is_(None),
            Token.expires_at.is_not(None),
            Token.expires_at > now,
            Token.expires_at <= now + within,
            User.disabled.is_(False),
        )
        .order_by(Token.expires_at)
    ).all()
    result = []
    for row, user in rows:
        assert row.expires_at is not None
        message = expiry_warning(row.name, row.expires_at, now, within)
        assert message is not None
        result.append(
            ExpiringToken(
                user=user.name,
                email=user.email,
                name=row.name,
                prefix=row.prefix,
                projects=row.projects,
                expires_at=row.expires_at,
                message=message,
            )
        )
    return result
