"""Health and Prometheus metrics."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nightwheels import __version__
from nightwheels.services import serials, stats
from nightwheels.services.context import Services

STARTED = time.time()


async def health(request: Request) -> Response:
    services: Services = request.app.state.services

    def check() -> int:
        with services.db.read() as session:
            return serials.current(session)

    serial = await run_in_threadpool(check)
    return JSONResponse({"status": "ok", "version": __version__, "serial": serial})


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services

    def collect() -> tuple[int, int, int]:
        with services.db.read() as session:
            counts = stats.totals(session)  # per-project aggregates: no file rows read
            return counts.projects, counts.files, counts.bytes

    projects, files, size = await run_in_threadpool(collect)
    pages = request.app.state.pages
    lines = [
        "# TYPE nightwheels_projects gauge",
        f"nightwheels_projects {projects}",
        "# TYPE nightwheels_files gauge",
        f"nightwheels_files {files}",
        "# TYPE nightwheels_stored_bytes gauge",
        f"nightwheels_stored_bytes {size}",
        "# TYPE nightwheels_serial gauge",
        f"nightwheels_serial {pages.global_serial}",
        "# TYPE nightwheels_uptime_seconds gauge",
        f"nightwheels_uptime_seconds {time.time() - STARTED:.0f}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


routes = [Route("/-/health", health), Route("/-/metrics", metrics)]
