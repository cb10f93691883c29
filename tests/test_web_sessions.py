"""Browser sessions (services/web_sessions.py) against a real SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.db.models import AuditEvent, WebSession, utcnow
from nightwheels.services import accounts, web_sessions
from nightwheels.services.audit import SYSTEM, Actor
from nightwheels.services.auth import require_site_admin
from nightwheels.services.context import Services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data=tmp_path / "data", session_hours=12, session_idle_minutes=30)
    settings.data.mkdir()
    upgrade(settings.database)
    services = Services.from_settings(settings)
    with services.db.write() as session:
        accounts.create_user(session, SYSTEM, "alice", organisation="NumPy")
    try:
        yield services
    finally:
        services.close()


def _start(services: Services) -> web_sessions.NewSession:
    with services.db.write() as session:
        user = accounts.get_user(session, "alice")
        return web_sessions.start(session, services.settings, user, "127.0.0.1")


def _resolve(services: Services, cookie: str) -> web_sessions.SessionUser | None:
    with services.db.read() as session:
        return web_sessions.resolve(session, services.settings, cookie)


def test_a_session_resolves_to_its_user_and_only_its_hash_is_stored(services: Services) -> None:
    new = _start(services)
    user = _resolve(services, new.cookie)
    assert user is not None and user.name == "alice" and user.organisation == "NumPy"
    assert user.csrf_matches(new.user.csrf) and not user.csrf_matches("x" + new.user.csrf[1:])
    assert not user.csrf_matches("") and not user.csrf_matches(None)
    with services.db.read() as session:
        row = session.execute(select(WebSession)).scalar_one()
        assert new.cookie not in (row.digest, row.csrf)
        actions = session.execute(select(AuditEvent.action)).scalars().all()
    assert "user.sign-in" in actions
    assert _resolve(services, new.cookie + "x") is None
    assert _resolve(services, "") is None
    assert _resolve(services, "a" * 500) is None


def test_sessions_end(services: Services) -> None:
    expired, idle, disabled, signed_out = (_start(services) for _ in range(4))
    with services.db.write() as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id == expired.user.session_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.execute(
            update(WebSession)
            .where(WebSession.id == idle.user.session_id)
            .values(last_seen_at=utcnow() - timedelta(minutes=31))
        )
    assert _resolve(services, expired.cookie) is None
    assert _resolve(services, idle.cookie) is None
    assert _resolve(services, disabled.cookie) is not None
    with services.db.write() as session:
        web_sessions.end(session, signed_out.user.session_id, Actor("alice"))
    assert _resolve(services, signed_out.cookie) is None
    with services.db.write() as session:
        accounts.update_user(session, SYSTEM, accounts.get_user(session, "alice"), disabled=True)
    assert _resolve(services, disabled.cookie) is None
    with services.db.write() as session:
        assert web_sessions.end_all(session, accounts.get_user(session, "alice").id) == 3


def test_touch_keeps_an_active_session_alive(services: Services) -> None:
    new = _start(services)
    with services.db.write() as session:
        session.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=20)))
    user = _resolve(services, new.cookie)
    assert user is not None and user.needs_touch
    with services.db.write() as session:
        web_sessions.touch(session, user.session_id)
    again = _resolve(services, new.cookie)
    assert again is not None and not again.needs_touch


def test_a_session_principal_manages_but_never_uploads(services: Services) -> None:
    user = _start(services).user
    principal = web_sessions.principal(user, "10.0.0.1")
    assert principal.can_manage and principal.projects is None
    assert "upload" not in principal.permissions
    assert principal.actor == Actor("alice", "10.0.0.1")
    with pytest.raises(Exception, match="only site admins"):
        require_site_admin(principal, "approve access requests")
