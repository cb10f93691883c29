"""Accounts for access tests, and an API client that asserts on refusals.

Users, roles and tokens are made through the services on the live server's own database
(the local admin path, in-process: fast); every behaviour under test then goes through the
live server's HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from nightwheels.config import Settings
from nightwheels.core.permissions import Role
from nightwheels.db.models import Token
from nightwheels.services import accounts, tokens
from nightwheels.services.audit import SYSTEM
from nightwheels.services.context import Services
from tests.support.backends import BACKENDS, Backend, open_backend
from tests.support.server import LiveServer
from tests.support.uploads import post_wheel


class Accounts:
    def __init__(self, data: Path, backend: Backend | None = None) -> None:
        if backend is not None and backend.name != "sqlite":
            self.services = backend.services(data)
        else:
            self.services = Services.from_settings(
                Settings(data=data, database_url=None, storage=None)
            )

    def sql(self, statement: str, **params: Any) -> Any:
        """One value from the server's database, whichever engine it is."""
        with self.services.db.read() as session:
            return session.execute(text(statement), params).scalar_one()

    def close(self) -> None:
        self.services.close()

    def user(
        self,
        name: str,
        *,
        admin: bool = False,
        organisation: str | None = None,
        password: str | None = None,
    ) -> str:
        with self.services.db.write() as session:
            user = accounts.create_user(
                session, SYSTEM, name, organisation=organisation, is_admin=admin
            )
            if password:
                accounts.set_password(session, SYSTEM, user, password)
        return name

    def role(self, project: str, user: str, role: str = "admin") -> None:
        with self.services.db.write() as session:
            proj = accounts.get_or_create_project(session, SYSTEM, project)
            accounts.set_role(session, SYSTEM, accounts.get_user(session, user), proj, Role(role))

    def token(
        self,
        user: str,
        *projects: str,
        permission: str = "manage",
        expires_at: datetime | None = None,
        name: str | None = None,
    ) -> str:
        with self.services.db.write() as session:
            created = tokens.create_token(
                session,
                SYSTEM,
                accounts.get_user(session, user),
                name=name or f"{user}-{permission}",
                projects=list(projects) or None,
                permissions=[permission],
                expires_at=expires_at,
            )
        return created.secret

    def set_token_expiry(self, secret: str, expires_at: datetime) -> None:
        """Test setup only: move a token's expiry (the API refuses past dates)."""
        prefix = secret.split("_")[1]
        with self.services.db.write() as session:
            session.execute(
                update(Token).where(Token.prefix == prefix).values(expires_at=expires_at)
            )

    def token_row(self, prefix: str) -> Token:
        with self.services.db.read() as session:
            return session.execute(select(Token).where(Token.prefix == prefix)).scalar_one()


class Api:
    """httpx against ``/api/v1`` with one token; ``refused`` asserts status and reason."""

    def __init__(self, server: LiveServer, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.url + "/api/v1", headers=headers, timeout=30)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body if body is not None else {})

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.put(path, json=body if body is not None else {})

    def delete(self, path: str) -> httpx.Response:
        return self.http.delete(path)

    def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(
            method, path, json=body if method != "GET" else None, params=params
        )
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


def refused(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The response is an error with ``status`` and a message containing ``reason``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert reason in body["message"], body["message"]
    return body


def forbidden(response: httpx.Response, reason: str) -> dict[str, Any]:
    return refused(response, 403, reason)


@pytest.fixture(scope="module", params=BACKENDS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One live server per test module and backend (tests use distinct names)."""
    root = tmp_path_factory.mktemp("live")
    with (
        open_backend(request) as backend,
        LiveServer(data=root / "data", backend=backend) as server,
    ):
        yield server


@pytest.fixture(scope="module")
def people(live: LiveServer) -> Iterator[Accounts]:
    accounts_ = Accounts(live.data, live.backend)
    try:
        yield accounts_
    finally:
        accounts_.close()


def upload(server: LiveServer, token: str, wheel: Path) -> httpx.Response:
    """The legacy upload protocol (as twine speaks it), answering JSON."""
    return post_wheel(server, token, wheel, json=True)
