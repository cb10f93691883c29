"""The web UI's routes, mounted by ``server/app.py`` (server-rendered, no JavaScript framework)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from nightwheels.web import public
from nightwheels.web.templating import STATIC


class _Static(StaticFiles):
    """Static files; their URLs carry a content version, so they can be cached for long."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_cached(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"cache-control", b"public, max-age=31536000, immutable"),
                ]
            await send(message)

        await super().__call__(scope, receive, send_cached)


routes: list[BaseRoute] = [
    Route("/", public.home),
    Route("/search", public.search),
    Route("/project/{name}/", public.project),
    Route("/project/{name}", public.project),
    Route("/freshness/", public.freshness),
    Mount("/-/static", app=_Static(directory=STATIC), name="static"),
]
