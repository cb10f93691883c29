"""Upload sessions (atomic nights): open, inspect, publish, cancel.

Files go into a session through ``POST /legacy/session/<id>/`` (twine, ``uv publish``) or
``/legacy/session/<id>/batch/`` (``nightwheels upload --session``); see
:mod:`nightwheels.services.upload_sessions`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from nightwheels.server.api.deps import AuthFirstRoute, PrincipalDep, ServicesDep
from nightwheels.services import upload_sessions
from nightwheels.services.upload_sessions import SessionInfo

router = APIRouter(tags=["upload sessions"], route_class=AuthFirstRoute)


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="e.g. nightly-<CI run id>; jobs share it")
    label: str = Field(default="main", max_length=64)
    ttl_hours: float | None = Field(default=None, gt=0, le=168)


class PendingOut(BaseModel):
    filename: str
    version: str
    sha256: str
    size: int
    uploaded_at: datetime
    uploader: str


class SessionOut(BaseModel):
    id: str
    project: str
    name: str
    label: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    upload_url: str
    preview_url: str
    files: list[PendingOut]


def _out(request: Request, info: SessionInfo) -> SessionOut:
    root = str(request.base_url).rstrip("/")
    root = root.removesuffix("/api/v1")
    return SessionOut(
        id=info.id,
        project=info.project,
        name=info.name,
        label=info.label,
        state=info.state,
        created_by=info.created_by,
        created_at=info.created_at,
        expires_at=info.expires_at,
        closed_at=info.closed_at,
        upload_url=f"{root}/legacy/session/{info.id}/",
        preview_url=f"{root}/session/{info.id}/simple/",
        files=[PendingOut(**f.__dict__) for f in info.files],
    )


@router.post("/projects/{project}/sessions", response_model=SessionOut, status_code=201)
async def open_session(
    project: str,
    body: SessionIn,
    request: Request,
    response: Response,
    services: ServicesDep,
    principal: PrincipalDep,
) -> SessionOut:
    """Open the named session of a project, or get it if it is open already (200)."""
    ttl = timedelta(hours=body.ttl_hours) if body.ttl_hours else None
    info, created = await run_in_threadpool(
        upload_sessions.open_session,
        services,
        principal,
        project,
        body.name,
        label=body.label,
        ttl=ttl,
    )
    if not created:
        response.status_code = 200
    return _out(request, info)


@router.get("/projects/{project}/sessions/{name}", response_model=SessionOut)
async def find_session(
    project: str, name: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> SessionOut:
    """The open session of a project by its name."""
    info = await run_in_threadpool(
        upload_sessions.find_open_session, services, principal, project, name
    )
    return _out(request, info)


@router.get("/sessions/{session_id}", response_model=SessionOut)
async def get_session(
    session_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> SessionOut:
    info = await run_in_threadpool(upload_sessions.get_session, services, principal, session_id)
    return _out(request, info)


@router.post("/sessions/{session_id}/publish", response_model=SessionOut)
async def publish_session(
    session_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> SessionOut:
    """Make every file of the session live at once: all of them, or none (409 and why)."""
    info = await run_in_threadpool(upload_sessions.publish_session, services, principal, session_id)
    return _out(request, info)


@router.delete("/sessions/{session_id}", response_model=SessionOut)
async def cancel_session(
    session_id: str, request: Request, services: ServicesDep, principal: PrincipalDep
) -> SessionOut:
    info = await run_in_threadpool(upload_sessions.cancel_session, services, principal, session_id)
    return _out(request, info)
