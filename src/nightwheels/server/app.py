"""The ASGI application: routes, shared state, error mapping."""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nightwheels.config import Settings
from nightwheels.server import (
    asof,
    client,
    early_warning,
    errors,
    files,
    health,
    oidc,
    session_preview,
    simple,
    upload,
)
from nightwheels.server.memory import MemoryTrimmer
from nightwheels.server.middleware import SECURITY_HEADERS, BodyLimits, SecurityHeaders
from nightwheels.server.pages import PageCache
from nightwheels.server.state import STATE_KEY, AppState
from nightwheels.services.context import Services
from nightwheels.services.throttle import AuthThrottle

SWITCH_INTERVAL = 0.001  # seconds


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or Settings()
    services = services or Services.from_settings(settings)
    pages = PageCache(services)
    throttle = AuthThrottle(
        services.db, settings.auth_failures_per_minute, settings.auth_failures_per_account
    )
    background: list = []  # objects with start()/stop(), e.g. the prune scheduler
    background.append(MemoryTrimmer(settings.malloc_trim_interval))
    if services.settings.prune_interval > 0:
        from nightwheels.server.maintenance import Scheduler

        background.append(Scheduler(services.settings, services.settings.prune_interval))
    if services.settings.export_static:
        from nightwheels.services.export import ExportWatcher
        from nightwheels.storage.static import open_target

        background.append(
            ExportWatcher(
                services,
                open_target(services.settings.export_static),
                interval=services.settings.export_interval,
                files_url=services.settings.export_files_url,
            )
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Threads (page renders, the thread pool) hold the interpreter lock for up to the
        # switch interval while the event loop waits for it: 5 ms by default, as long as a
        # whole cached request. A shorter interval bounds that wait.
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        pages.start()
        for task in background:
            task.start()
        api.build_soon()  # serving starts now; the API is ready a moment later
        try:
            yield
        finally:
            for task in background:
                task.stop()
            pages.stop()
            services.close()
            sys.setswitchinterval(switch_interval)

    state = AppState(
        services=services,
        pages=pages,
        asof=asof.AsOfPages(services, pages),
        file_lookup=files.FileLookup(services, pages),
        throttle=throttle,
        readiness=health.Readiness(services),
        background=background,
    )

    def build_api() -> ASGIApp:
        from nightwheels.server.api import create_api

        built = create_api()
        setattr(built.state, STATE_KEY, state)
        return built

    api = BuiltOnFirstUse(build_api)

    routes: list[BaseRoute] = [
        *simple.routes,
        *asof.routes,
        *files.routes,
        *upload.routes,
        *session_preview.routes,
        *early_warning.routes,
        *health.routes,
        *client.routes,
        *oidc.routes,
        Mount("/api/v1", app=api),
        *_web_routes(),
    ]
    body_limits = Middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout,
        min_rate=settings.body_min_rate,
    )
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(simple.CachedPages, pages=pages, extra_headers=SECURITY_HEADERS),
            body_limits,
            Middleware(SecurityHeaders),
        ],
    )
    errors.install(app)
    setattr(app.state, STATE_KEY, state)
    return app


class BuiltOnFirstUse:
    """An ASGI app built after the server starts serving, or by its first request if sooner.

    The JSON API is a FastAPI app whose routes build their pydantic models when added: a
    fifth of a server's start-up (benchmarks/startup.py). The lifespan starts serving the
    index first and builds it in a thread (:meth:`build_soon`); a request that arrives
    before it is done waits for it.
    """

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def _get(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                self._app = self._build()
            return self._app

    def build_soon(self, delay: float = 1.0) -> None:
        """Build in a thread after ``delay`` seconds: the first requests to the index come
        first (the build holds the interpreter lock for a few hundred milliseconds)."""
        timer = threading.Timer(delay, self._get)
        timer.name, timer.daemon = "build-api", True
        timer.start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or await run_in_threadpool(self._get)
        await app(scope, receive, send)


def _web_routes() -> list[BaseRoute]:
    """The web UI, when present; otherwise a plain home page."""
    try:
        from nightwheels.web.routes import routes
    except ImportError:
        return [Route("/", _home)]
    return list(routes)


async def _home(request: Request) -> Response:
    return PlainTextResponse(
        "nightwheels nightly wheel index\n\n"
        f"pip install --pre --extra-index-url {request.base_url}simple/ PACKAGE\n"
    )
