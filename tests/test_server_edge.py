"""The server's edge, in-process: one error mapper, one throttle, typed state, plain imports.

The application is driven through httpx's ASGITransport (with its lifespan run), so these
tests cost no server process; what needs real sockets is in test_server_limits.py.
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
from starlette.applications import Starlette
from starlette.routing import Route

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.errors import StorageUnavailable
from nightwheels.server.app import create_app
from nightwheels.server.state import app_state
from nightwheels.services import accounts
from nightwheels.services.audit import SYSTEM

T = TypeVar("T")
SRC = Path(__file__).resolve().parents[1] / "src" / "nightwheels"


def make_app(tmp_path: Path, **settings: Any) -> Starlette:
    configured = Settings(data=tmp_path / "data", **settings)
    configured.data.mkdir(parents=True, exist_ok=True)
    upgrade(configured.database)
    return create_app(configured)


def drive(app: Starlette, fn: Callable[[httpx.AsyncClient], Awaitable[T]], **client: Any) -> T:
    """Run ``fn`` with a client of ``app``, inside the app's lifespan, on a loop of its own."""

    async def run() -> T:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, **client)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                return await fn(http)

    # A thread of its own: asyncio.run() refuses to start inside another test's loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def add_user(app: Starlette, name: str = "ann") -> str:
    """A user with an upload token for project ``demo``; returns the token."""
    services = app.state.nightwheels.services
    with services.db.write() as session:
        user = accounts.create_user(session, SYSTEM, name)
        return accounts.create_token_as_admin(
            session, SYSTEM, user, name="t", projects=["demo"], permission="upload"
        ).secret


def test_state_is_typed_and_routers_are_plain_imports() -> None:
    """Issue 18 item 2: no ``request.app.state.<name>`` reads, no importlib router lists."""
    offenders = []
    for path in sorted((SRC / "server").rglob("*.py")) + sorted((SRC / "web").rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "state"
                and isinstance(node.value.value, ast.Attribute)
                and node.value.value.attr == "app"
            ):
                offenders.append(f"{path.name}:{node.lineno} app.state.{node.attr}")
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if "importlib" in names or module.startswith("importlib"):
                    offenders.append(f"{path.name}:{node.lineno} importlib")
    assert offenders == []


def test_one_error_mapper_one_challenge(tmp_path: Path) -> None:
    """The API, the upload endpoint and the web agree on 401's WWW-Authenticate."""
    app = make_app(tmp_path)

    async def run(http: httpx.AsyncClient) -> list[httpx.Response]:
        bad = {"Authorization": "Bearer nwt_0000_wrong"}
        return [
            await http.get("/api/v1/me"),
            await http.get("/api/v1/me", headers=bad),
            await http.post("/legacy/", content=b"x"),
            await http.post("/legacy/", content=b"x", headers=bad),
        ]

    responses = drive(app, run)
    assert [r.status_code for r in responses] == [401] * 4
    challenges = {r.headers["www-authenticate"] for r in responses}
    assert challenges == {'Basic realm="nightwheels", Bearer realm="nightwheels"'}
    assert responses[0].json()["error"] == "unauthenticated"
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in responses)


def test_valid_token_is_served_while_its_address_is_blocked(tmp_path: Path) -> None:
    app = make_app(tmp_path, auth_failures_per_minute=2)
    token = add_user(app, "ann")

    async def run(http: httpx.AsyncClient) -> list[httpx.Response]:
        bad = {"Authorization": "Bearer nwt_0000_wrong"}
        return [
            await http.get("/api/v1/me", headers=bad),
            await http.get("/api/v1/me", headers=bad),
            await http.get("/api/v1/me", headers=bad),
            await http.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}),
        ]

    responses = drive(app, run)
    assert [r.status_code for r in responses] == [401, 401, 429, 200]
    seconds = responses[2].headers["retry-after"]
    assert f"retry in {seconds} s" in responses[2].json()["message"]
    assert app_state  # the accessor every edge reads the state through


def test_every_503_says_when_to_retry(tmp_path: Path) -> None:
    """An object store outage carries Retry-After like a database one (a route raising what
    the S3 store raises when its endpoint is down)."""
    app = make_app(tmp_path)

    async def down(request: object) -> None:
        raise StorageUnavailable("the object store could not read a file; try again later")

    app.router.routes.insert(0, Route("/down", down))

    async def run(http: httpx.AsyncClient) -> httpx.Response:
        return await http.get("/down")

    response = drive(app, run)
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert "try again later" in response.text
