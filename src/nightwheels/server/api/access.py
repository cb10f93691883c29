"""Reviewed access requests: file, comment, approve or deny, withdraw."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from nightwheels.core.access import MAX_COMMENT_LENGTH, MAX_REASON_LENGTH
from nightwheels.server.api.deps import AuthFirstRoute, ManagePrincipalDep, ServicesDep
from nightwheels.services import access
from nightwheels.services.access import RequestView

router = APIRouter(tags=["access requests"], route_class=AuthFirstRoute)

RequestId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CommentOut(BaseModel):
    author: str | None
    body: str
    at: datetime


class AccessRequestOut(BaseModel):
    id: int
    project: str
    requester: str
    requester_organisation: str | None
    reason: str
    repository_url: str | None
    status: Literal["pending", "approved", "denied", "withdrawn"]
    created_at: datetime
    project_exists: bool
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    comments: list[CommentOut]

    @classmethod
    def of(cls, view: RequestView) -> AccessRequestOut:
        data = dict(view.__dict__)
        data["comments"] = [CommentOut(**c.__dict__) for c in view.comments]
        return cls(**data)


class AccessRequestCreate(BaseModel):
    project: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)
    repository_url: str | None = Field(default=None, max_length=500)


class CommentCreate(BaseModel):
    body: str = Field(min_length=1, max_length=MAX_COMMENT_LENGTH)


class Decision(BaseModel):
    reason: str | None = Field(default=None, max_length=MAX_REASON_LENGTH)


class Denial(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON_LENGTH)


@router.post("/access-requests", status_code=201)
def file_request(
    body: AccessRequestCreate, principal: ManagePrincipalDep, services: ServicesDep
) -> AccessRequestOut:
    view = services.db.run_write(
        lambda s: access.request_access(
            s, principal, body.project, body.reason, body.repository_url
        )
    )
    return AccessRequestOut.of(view)


@router.get("/access-requests")
def list_requests(
    principal: ManagePrincipalDep,
    services: ServicesDep,
    status: Literal["pending", "approved", "denied", "withdrawn", "all"] = "pending",
    everyone: bool = Query(False, alias="all", description="everyone's (site admins)"),
) -> list[AccessRequestOut]:
    with services.db.read() as session:
        views = access.list_requests(
            session, principal, status=None if status == "all" else status, everyone=everyone
        )
        return [AccessRequestOut.of(v) for v in views]


@router.get("/access-requests/{request_id}")
def show_request(
    request_id: RequestId, principal: ManagePrincipalDep, services: ServicesDep
) -> AccessRequestOut:
    with services.db.read() as session:
        return AccessRequestOut.of(access.get_request(session, principal, request_id))


@router.post("/access-requests/{request_id}/comments", status_code=201)
def add_comment(
    request_id: RequestId, body: CommentCreate, principal: ManagePrincipalDep, services: ServicesDep
) -> AccessRequestOut:
    view = services.db.run_write(lambda s: access.comment(s, principal, request_id, body.body))
    return AccessRequestOut.of(view)


@router.post("/access-requests/{request_id}/approve")
def approve(
    request_id: RequestId,
    principal: ManagePrincipalDep,
    services: ServicesDep,
    body: Decision | None = None,
) -> AccessRequestOut:
    reason = body.reason if body else None
    view = services.db.run_write(lambda s: access.approve(s, principal, request_id, reason))
    return AccessRequestOut.of(view)


@router.post("/access-requests/{request_id}/deny")
def deny(
    request_id: RequestId, body: Denial, principal: ManagePrincipalDep, services: ServicesDep
) -> AccessRequestOut:
    view = services.db.run_write(lambda s: access.deny(s, principal, request_id, body.reason))
    return AccessRequestOut.of(view)


@router.post("/access-requests/{request_id}/withdraw")
def withdraw(
    request_id: RequestId, principal: ManagePrincipalDep, services: ServicesDep
) -> AccessRequestOut:
    view = services.db.run_write(lambda s: access.withdraw(s, principal, request_id))
    return AccessRequestOut.of(view)
