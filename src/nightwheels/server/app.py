"""The ASGI application: routes, shared state, error mapping."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from nightwheels.config import Settings
from nightwheels.errors import NightwheelsError
from nightwheels.server import asof, client, files, health, oidc, simple, upload
from nightwheels.server.api import create_api
from nightwheels.server.errors import handle_nightwheels_error, handle_unexpected
from nightwheels.server.memory import MemoryTrimmer
from nightwheels.server.middleware import SecurityHeaders
from nightwheels.server.pages import PageCache
from nightwheels.services.context import Services
from nightwheels.services.throttle import FailureThrottle

SWITCH_INTERVAL = 0.001  # seconds


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    settings = settings or Settings()
    services = services or Services.from_settings(settings)
    pages = PageCache(services)
    throttle = FailureThrottle(services.db, settings.auth_failures_per_minute)
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
        try:
            yield
        finally:
            for task in background:
                task.stop()
            pages.stop()
            services.close()
            sys.setswitchinterval(switch_interval)

    api = create_api(services)
    api.state.throttle = throttle
    routes: list[BaseRoute] = [
        *simple.routes,
        *asof.routes,
        *files.routes,
        *upload.routes,
        *health.routes,
        *client.routes,
        *oidc.routes,
        Mount("/api/v1", app=api),
        *_web_routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            NightwheelsError: handle_nightwheels_error,
            Exception: handle_unexpected,
        },
    )
    app.state.services = services
    app.state.pages = pages
    app.state.asof = asof.AsOfPages(services, pages)
    app.state.file_lookup = files.FileLookup(services)
    app.state.throttle = throttle
    app.state.background = background
    return app


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
