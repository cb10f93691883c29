"""The JSON management API under /api/v1 (OpenAPI at /api/v1/openapi.json).

Each feature contributes an ``APIRouter`` from its own module listed in ``ROUTERS``.
"""

from __future__ import annotations

import importlib

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

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


class ErrorOut(BaseModel):
    """Every error answer: a code to branch on and a sentence for people."""

    model_config = ConfigDict(extra="forbid")

    error: str
    message: str


# Documented on every operation, so that clients (and the schema fuzz test) know the shape.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "the request is not acceptable; the message says why"),
        (401, "no or invalid credentials"),
        (403, "authenticated, but not allowed"),
        (404, "no such resource"),
        (409, "conflicts with the current state"),
        (422, "malformed parameters or body"),
        (429, "too many failed authentications from this address"),
        (503, "a dependency (e.g. the OIDC key set) is unreachable; retry"),
    )
}


def create_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="nightwheels",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses=ERROR_RESPONSES,
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
