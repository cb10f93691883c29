"""Browser sessions for the web UI: created at sign-in, ended at sign-out or on expiry.

The cookie carries a 256-bit random secret; the database keeps only its SHA-256, so a leaked
database does not sign anyone in. Each session has its own CSRF token for its forms. A session
ends at ``session_hours`` after sign-in, or ``session_idle_minutes`` after its last request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.permissions import Permission
from nightwheels.db.models import User, WebSession, utcnow
from nightwheels.services import audit
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal

# ``last_seen_at`` is written at most this often per session (it costs a write).
SEEN_RESOLUTION = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class SessionUser:
    """Who a browser session belongs to (what the web layer needs per request)."""

    session_id: int
    user_id: int
    name: str
    is_admin: bool
    organisation: str | None
    csrf: str
    expires_at: datetime
    needs_touch: bool = False

    def csrf_matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), (token or "").encode())


@dataclass(frozen=True)
class NewSession:
    cookie: str  # the secret for the cookie, never stored
    user: SessionUser


def start(session: Session, settings: Settings, user: User, source: str | None) -> NewSession:
    """Open a session for a user who has just proved who they are."""
    now = utcnow()
    secret = secrets.token_urlsafe(32)
    row = WebSession(
        digest=_digest(secret),
        user_id=user.id,
        csrf=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.session_hours),
        source=(source or "")[:100] or None,
    )
    session.add(row)
    session.flush()
    # Housekeeping: expired sessions of this user go now (they can never be used again).
    session.execute(
        delete(WebSession).where(WebSession.user_id == user.id, WebSession.expires_at <= now)
    )
    audit.record(session, Actor(user.name, source), "user.sign-in", target=user.name)
    return NewSession(secret, _session_user(row, user))


def _session_user(row: WebSession, user: User, *, needs_touch: bool = False) -> SessionUser:
    return SessionUser(
        session_id=row.id,
        user_id=user.id,
        name=user.name,
        is_admin=user.is_admin,
        organisation=user.organisation,
        csrf=row.csrf,
        expires_at=row.expires_at,
        needs_touch=needs_touch,
    )


def resolve(session: Session, settings: Settings, cookie: str) -> SessionUser | None:
    """The live session for a cookie value, or ``None`` (unknown, expired, idle, disabled).

    Read-only; call :func:`touch` (in a write transaction) when ``needs_touch`` is set.
    """
    if not cookie or len(cookie) > 100:
        return None
    found = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.digest == _digest(cookie))
    ).first()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    if row.expires_at <= now or now - row.last_seen_at > idle or user.disabled:
        return None
    return _session_user(row, user, needs_touch=now - row.last_seen_at > SEEN_RESOLUTION)


def touch(session: Session, session_id: int) -> None:
    row = session.get(WebSession, session_id)
    if row is not None:
        row.last_seen_at = utcnow()


def end(session: Session, session_id: int, actor: Actor) -> None:
    """Sign out: the session row goes, so the cookie is worthless from now on."""
    row = session.get(WebSession, session_id)
    if row is not None:
        session.delete(row)
        audit.record(session, actor, "user.sign-out", target=actor.name)


def end_all(session: Session, user_id: int, *, keep: int | None = None) -> int:
    """End every session of a user but ``keep`` (e.g. after a password change); how many."""
    query = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        query = query.where(WebSession.id != keep)
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def principal(user: SessionUser, source: str | None) -> Principal:
    """A signed-in browser acts for its user like an unscoped ``manage`` token: it manages
    (tokens, requests, reviews) through the same service rules, and never uploads."""
    return Principal(
        user_id=user.user_id,
        user_name=user.name,
        is_admin=user.is_admin,
        token_id=0,
        token_name="web session",  # noqa: S106 - a label, not a secret
        permissions=frozenset({Permission.MANAGE.value}),
        projects=None,
        expires_at=user.expires_at,
        source=source,
        organisation=user.organisation,
    )
