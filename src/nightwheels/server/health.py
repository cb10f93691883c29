"""Liveness, readiness and Prometheus metrics.

- ``/-/live``: the process answers (no I/O): for a supervisor deciding to restart it.
- ``/-/health``: ready to serve: the database and the blob store each answer within
  :data:`CHECK_TIMEOUT` seconds; otherwise 503 naming the one that failed, with
  ``Retry-After``: for a load balancer deciding where to send requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nightwheels import __version__
from nightwheels.db.failures import RETRY_AFTER, database_error
from nightwheels.errors import NightwheelsError
from nightwheels.server.state import app_state
from nightwheels.services import serials, stats
from nightwheels.services.context import Services

STARTED = time.time()
CHECK_TIMEOUT = 2.0  # seconds each dependency has to answer a health check


class Readiness:
    """The database and blob store checks, each bounded in time and run once at a time:
    a check that hangs is waited for by later health requests instead of starting another
    thread each (a dead endpoint cannot pile up threads)."""

    def __init__(self, services: Services, timeout: float = CHECK_TIMEOUT) -> None:
        self.services = services
        self.timeout = timeout
        self._running: dict[str, asyncio.Future[Any]] = {}

    def _database(self) -> int:
        with self.services.db.read() as session:
            return serials.current(session)

    def _store(self) -> None:
        check = getattr(self.services.store, "check", None)
        if check is not None:
            check()

    async def _run(self, name: str, fn: Callable[[], Any]) -> tuple[Any, str | None]:
        """``(result, None)``, or ``(None, what went wrong)``."""
        loop = asyncio.get_running_loop()
        running = self._running.get(name)
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running[name] = asyncio.ensure_future(run_in_threadpool(fn))
        try:
            return await asyncio.wait_for(asyncio.shield(running), self.timeout), None
        except TimeoutError:
            return None, f"no answer within {self.timeout:g} s"
        except NightwheelsError as exc:
            return None, exc.message
        except Exception as exc:
            known = database_error(exc)
            return None, known.message if known else f"failed ({type(exc).__name__})"

    async def check(self) -> tuple[dict[str, str], int | None]:
        """Each dependency's state (``"ok"`` or the problem), and the serial when known."""
        (serial, db_problem), (_, store_problem) = await asyncio.gather(
            self._run("database", self._database), self._run("blob store", self._store)
        )
        checks = {"database": db_problem or "ok", "blob store": store_problem or "ok"}
        return checks, serial


async def live(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def health(request: Request) -> Response:
    checks, serial = await app_state(request).readiness.check()
    failed = [
        f"the {name} failed: {problem}" for name, problem in checks.items() if problem != "ok"
    ]
    if failed:
        return JSONResponse(
            {
                "status": "unavailable",
                "error": "unavailable",
                "message": "; ".join(failed),
                "version": __version__,
                "checks": checks,
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER)},
        )
    return JSONResponse(
        {"status": "ok", "version": __version__, "serial": serial, "checks": checks}
    )


async def metrics(request: Request) -> Response:
    state = app_state(request)
    services = state.services

    def collect() -> tuple[int, int, int]:
        with services.db.read() as session:
            counts = stats.totals(session)  # per-project aggregates: no file rows read
            return counts.projects, counts.files, counts.bytes

    projects, files, size = await run_in_threadpool(collect)
    pages = state.pages
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


routes = [Route("/-/live", live), Route("/-/health", health), Route("/-/metrics", metrics)]
