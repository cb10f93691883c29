"""An unexpected error: a 500 that says nothing internal and still carries the security headers.

A live server has no route that fails on purpose, so this drives the real application
in-process with one extra route that raises.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from starlette.requests import Request
from starlette.routing import Route

from nightwheels.config import Settings
from nightwheels.server.app import create_app


async def _boom(request: Request) -> None:
    raise RuntimeError("secret internals /srv/db.sqlite")


def _get(tmp_path: Path, accept: str) -> httpx.Response:
    app = create_app(Settings(data=tmp_path / "data"))
    app.router.routes.insert(0, Route("/boom", _boom))

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/boom", headers={"Accept": accept})

    try:
        # A thread of its own: asyncio.run() refuses to start inside another test's loop.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()
    finally:
        app.state.nightwheels.services.close()


def test_500_has_security_headers_and_no_internals(tmp_path: Path) -> None:
    for accept, kind in (("text/plain", "text/plain"), ("application/json", "application/json")):
        response = _get(tmp_path, accept)
        assert response.status_code == 500
        assert response.headers["content-type"].startswith(kind)
        assert "not applied" in response.text
        assert "secret" not in response.text and "Traceback" not in response.text
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
