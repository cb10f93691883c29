"""The JSON management API under /api/v1 (OpenAPI at /api/v1/openapi.json).

Each feature contributes an ``APIRouter`` from its own module, included in ``create_api``.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict

from nightwheels import __version__
from nightwheels.server import errors


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
        (413, "the request body is larger than the limit"),
        (429, "too many failed authentications; Retry-After says when to retry"),
        (503, "a dependency (database, OIDC key set) is unreachable; Retry-After"),
        (507, "the server's storage is full; nothing was changed"),
    )
}


def create_api() -> FastAPI:
    """The API app; ``create_app`` gives it the site's state and error mapper."""
    from nightwheels.server.api import (
        access,
        audit,
        compat,
        early_warning,
        members,
        project_status,
        projects,
        retention,
        tokens,
        trusted_publishing,
        upload_sessions,
        users,
    )

    api = FastAPI(
        title="nightwheels",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        responses=ERROR_RESPONSES,
    )
    errors.install(api)
    for module in (
        projects,
        users,
        tokens,
        access,
        members,
        trusted_publishing,
        audit,
        compat,
        early_warning,
        retention,
        upload_sessions,
        project_status,
    ):
        api.include_router(module.router)
    return api
