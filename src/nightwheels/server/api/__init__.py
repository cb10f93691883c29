"""The JSON management API under /api/v1 (OpenAPI at /api/v1/openapi.json).

Each feature contributes an ``APIRouter`` from its own module listed in ``ROUTERS``.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from nightwheels import __version__
from nightwheels.errors import NightwheelsError, RateLimited
from nightwheels.services.context import Services

ROUTERS = (
    "projects",
    "users",
    "tokens",
    "access",
    "members",
    "trusted_publishing",
    "audit",
    "compat",
    "retention",
)


def create_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="nightwheels",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.services = services

    @api.exception_handler(NightwheelsError)
    async def _error(request: Request, exc: NightwheelsError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = "60"
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=headers
        )

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err.get('loc', ()))}: {err.get('msg', 'invalid')}"
            for err in exc.errors()[:5]
        )
        return JSONResponse(
            {"error": "invalid-request", "message": f"invalid request: {problems}"},
            status_code=422,
        )

    for name in ROUTERS:
        module = importlib.import_module(f"nightwheels.server.api.{name}")
        api.include_router(module.router)
    return api
