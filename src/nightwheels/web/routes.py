"""The web UI's routes, mounted by ``server/app.py`` (server-rendered, no JavaScript framework)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from nightwheels.web import account, admin, early_warning, public
from nightwheels.web.templating import STATIC


class _Static(StaticFiles):
    """Static files; their URLs carry a content version, so they can be cached for long."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_cached(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"cache-control", b"public, max-age=31536000, immutable"),
                ]
            await send(message)

        await super().__call__(scope, receive, send_cached)


GET_POST = ["GET", "POST"]
routes: list[BaseRoute] = [
    Route("/", public.home),
    Route("/search", public.search),
    Route("/project/{name}/", public.project),
    Route("/project/{name}", public.project),
    Route("/freshness/", public.freshness),
    Route("/compat/", early_warning.matrix),
    Route("/account/sign-in", account.sign_in, methods=GET_POST),
    Route("/account/sign-out", account.sign_out, methods=["POST"]),
    Route("/account/", account.home),
    Route("/account/password", account.password, methods=GET_POST),
    Route("/account/tokens", account.token_list, methods=GET_POST),
    Route("/account/tokens/{prefix}/revoke", account.token_revoke, methods=["POST"]),
    Route("/account/requests", account.request_list, methods=GET_POST),
    Route("/account/requests/{id:int}", account.request_detail),
    Route("/account/requests/{id:int}/comment", account.request_comment, methods=["POST"]),
    Route("/account/requests/{id:int}/withdraw", account.request_withdraw, methods=["POST"]),
    Route("/admin/requests", admin.queue),
    Route("/admin/requests/{id:int}/approve", admin.approve, methods=["POST"]),
    Route("/admin/requests/{id:int}/deny", admin.deny, methods=["POST"]),
    Route("/admin/audit", admin.audit_log),
    Mount("/-/static", app=_Static(directory=STATIC), name="static"),
]
