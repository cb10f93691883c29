"""Users, their passwords, and projects' existence; tokens live in :mod:`services.tokens`."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import Permission, Role
from nightwheels.db.models import Project, ProjectRole, User
from nightwheels.db.queries import project_by_name
from nightwheels.errors import Conflict, Forbidden, InvalidRequest, NotFound, Unauthenticated
from nightwheels.services import audit, serials, web_sessions
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal, require_site_admin

# Tokens used to live here; these names stay importable from this module.
from nightwheels.services.tokens import CreatedToken, create_token, revoke_token

__all__ = [
    "CreatedToken",
    "UserInfo",
    "authenticate_password",
    "change_password",
    "create_token",
    "create_token_as_admin",
    "create_user",
    "get_or_create_project",
    "get_project",
    "get_user",
    "list_users",
    "revoke_token",
    "set_password",
    "set_role",
    "update_user",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

# argon2id with the library's defaults (RFC 9106 "low memory" profile).
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when there is no user, so a wrong name costs as long as a wrong
    password (made on first use: hashing costs half a second, not to be paid at import)."""
    return _hasher.hash(secrets.token_urlsafe(16))


_UNSET: Any = object()


@dataclass(frozen=True)
class UserInfo:
    name: str
    email: str | None
    organisation: str | None
    is_admin: bool
    disabled: bool
    created_at: datetime
    has_password: bool


def user_info(user: User) -> UserInfo:
    return UserInfo(
        name=user.name,
        email=user.email,
        organisation=user.organisation,
        is_admin=user.is_admin,
        disabled=user.disabled,
        created_at=user.created_at,
        has_password=user.password_hash is not None,
    )


def get_user(session: Session, name: str) -> User:
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def list_users(session: Session, principal: Principal | None = None) -> list[User]:
    """Every user, by name: for site admins (``principal`` ``None``: the local admin)."""
    if principal is not None:
        require_site_admin(principal, "list users")
    return list(session.execute(select(User).order_by(User.name)).scalars())


def _check_user_name(name: str) -> None:
    if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
        raise InvalidRequest(f"{name!r} is not a valid user name: use letters, digits, - and _")
    if not name.isascii():
        raise InvalidRequest(f"{name!r} is not a valid user name: use ASCII letters")


def _clean(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    value = " ".join(value.split())
    if len(value) > limit or not value.isprintable():
        raise InvalidRequest(f"the {field} must be at most {limit} printable characters")
    return value or None


def create_user(
    session: Session,
    actor: Actor,
    name: str,
    *,
    email: str | None = None,
    organisation: str | None = None,
    is_admin: bool = False,
    principal: Principal | None = None,
) -> User:
    """A new user: site admins only (``principal`` ``None``: the local admin)."""
    if principal is not None:
        require_site_admin(principal, "create users")
    _check_user_name(name)
    email = _clean(email, "email", 300)
    organisation = _clean(organisation, "organisation", 200)
    if session.execute(select(User.id).where(User.name == name)).first():
        raise Conflict(f"a user named {name!r} already exists")
    user = User(name=name, email=email, organisation=organisation, is_admin=is_admin)
    session.add(user)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"a user named {name!r} already exists") from None
    audit.record(
        session, actor, "user.create", target=name, admin=is_admin, organisation=organisation
    )
    return user


def update_user(
    session: Session,
    actor: Actor,
    user: User,
    *,
    email: str | None = _UNSET,
    organisation: str | None = _UNSET,
    is_admin: bool | None = None,
    disabled: bool | None = None,
    principal: Principal | None = None,
) -> User:
    """Change a user's details; only the fields given. Recorded in the audit log, with the
    values before the change.

    Through a token (``principal``; ``None`` is the local admin): site admins only, and
    nobody changes their own admin or disabled status or organisation (the organisation is
    what the conflict-of-interest rule of access reviews compares).
    """
    if principal is not None:
        require_site_admin(principal, "change users")
        own = [
            label
            for label, given in (
                ("admin status", is_admin is not None),
                ("disabled status", disabled is not None),
                ("organisation", organisation is not _UNSET),
            )
            if given
        ]
        if principal.user_id == user.id and own:
            raise Forbidden(
                f"you cannot change your own {' or '.join(own)}: ask another site admin"
            )
    changes: dict[str, Any] = {}
    if email is not _UNSET:
        changes["email"] = _clean(email, "email", 300)
    if organisation is not _UNSET:
        changes["organisation"] = _clean(organisation, "organisation", 200)
    if is_admin is not None:
        changes["is_admin"] = is_admin
    if disabled is not None:
        changes["disabled"] = disabled
    changes = {k: v for k, v in changes.items() if getattr(user, k) != v}
    previous = {k: getattr(user, k) for k in changes}
    for key, value in changes.items():
        setattr(user, key, value)
    if changes:
        audit.record(session, actor, "user.update", target=user.name, previous=previous, **changes)
    return user


def set_password(
    session: Session, actor: Actor, user: User, password: str, *, keep_session: int | None = None
) -> None:
    """Set ``user``'s password and sign out every web session but ``keep_session``.

    Whoever knew the old password may hold a session: a new password ends them.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidRequest(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    user.password_hash = _hasher.hash(password)
    ended = web_sessions.end_all(session, user.id, keep=keep_session)
    audit.record(session, actor, "user.set-password", target=user.name, sessions_ended=ended)


def change_password(
    session: Session,
    actor: Actor,
    user: User,
    current: str,
    new: str,
    *,
    keep_session: int | None = None,
) -> None:
    """A user's own change: the current password first, then :func:`set_password`."""
    if not verify_password(user, current):
        raise Unauthenticated("the current password is not right")
    if new == current:
        raise InvalidRequest("the new password is the same as the current one")
    set_password(session, actor, user, new, keep_session=keep_session)


def verify_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists or has a password."""
    stored = user.password_hash if user is not None else None
    try:
        _hasher.verify(stored or _dummy_hash(), password[:MAX_PASSWORD_LENGTH])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None and user is not None and not user.disabled


def authenticate_password(session: Session, name: str, password: str) -> User:
    """The user with this name and password (write session: may upgrade the hash)."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if not verify_password(user, password):
        raise Unauthenticated("wrong user name or password")
    assert user is not None and user.password_hash is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def get_project(session: Session, name: str) -> Project:
    normalized = normalize_name(name)
    project = project_by_name(session, normalized)
    if project is None:
        raise NotFound(f"no project named {normalized!r}")
    return project


def get_or_create_project(session: Session, actor: Actor, name: str) -> Project:
    normalized = normalize_name(name)
    project = project_by_name(session, normalized)
    if project is None:
        project = Project(name=normalized, display_name=name)
        session.add(project)
        session.flush()
        serials.bump(session, project)
        audit.record(session, actor, "project.create", project=normalized)
    return project


def set_role(session: Session, actor: Actor, user: User, project: Project, role: Role) -> None:
    """Give ``user`` a role on ``project`` (no permission check: see ``services.members``)."""
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
    session.flush()
    audit.record(
        session, actor, "role.set", project=project.name, target=user.name, role=role.value
    )


def create_token_as_admin(
    session: Session,
    actor: Actor,
    owner: User,
    *,
    name: str,
    projects: list[str],
    permission: str,
    expires_at: datetime | None = None,
) -> CreatedToken:
    """A token made by the server machine's administrator (``token create --user``).

    An upload or report token also gives its owner a role in each named project they have
    none in yet: the administrator's word is the review (only a downstream's members report
    for it). A project it creates gets its owner as admin (a project nobody administers has
    no one to manage members or publishers); an existing one gets them as uploader.
    """
    from nightwheels.services.auth import user_role

    if permission in (Permission.UPLOAD.value, Permission.REPORT.value):
        for name_ in projects:
            existed = project_by_name(session, normalize_name(name_)) is not None
            project = get_or_create_project(session, actor, name_)
            if user_role(session, owner.id, project.id) is None:
                role = Role.UPLOADER if existed else Role.ADMIN
                set_role(session, actor, owner, project, role)
    return create_token(
        session,
        actor,
        owner,
        name=name,
        projects=projects or None,
        permissions=[permission],
        expires_at=expires_at,
    )
