"""Trusted publishers of a project, and the OIDC token exchange CI jobs call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from nightwheels.server.api.deps import AuthFirstRoute, ManagePrincipalDep, ServicesDep, throttled
from nightwheels.server.auth import client_address
from nightwheels.services import trusted_publishing as tp
from nightwheels.services.trusted_publishing import MAX_OIDC_TOKEN, PublisherInfo

router = APIRouter(tags=["trusted publishing"], route_class=AuthFirstRoute)

ProjectPath = Annotated[str, Path(min_length=1, max_length=200)]
PublisherId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class PublisherOut(BaseModel):
    id: int
    project: str
    provider: str
    repository: str
    workflow: str
    environment: str | None
    ref: str | None
    repository_owner_id: str | None
    repository_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, info: PublisherInfo) -> PublisherOut:
        return cls(**info.__dict__)


class PublisherCreate(BaseModel):
    repository: str = Field(min_length=1, max_length=200, description="GitHub owner/name")
    workflow: str = Field(
        min_length=1, max_length=200, description="workflow file name, e.g. nightly.yml"
    )
    environment: str | None = Field(default=None, max_length=255)
    ref: str | None = Field(
        default=None, max_length=255, description="the only ref it publishes from: refs/heads/main"
    )
    repository_owner_id: str | int | None = Field(
        default=None, description="GitHub's numeric owner id; else pinned on the first exchange"
    )
    repository_id: str | int | None = Field(
        default=None, description="GitHub's numeric repository id; else pinned likewise"
    )


class ExchangeBody(BaseModel):
    token: str = Field(min_length=1, max_length=MAX_OIDC_TOKEN, description="the OIDC JWT")
    project: str | None = Field(
        default=None, max_length=200, description="needed if the workflow publishes several"
    )


class ExchangeOut(BaseModel):
    token: str = Field(description="an upload token for the projects; expires in minutes")
    project: str = Field(description="the first of projects")
    projects: list[str] = Field(description="every project the token may upload to")
    expires_at: datetime
    publisher: str


@router.get("/projects/{name}/publishers")
def list_publishers(
    name: ProjectPath, principal: ManagePrincipalDep, services: ServicesDep
) -> list[PublisherOut]:
    with services.db.read() as session:
        return [PublisherOut.of(p) for p in tp.list_publishers(session, name, principal)]


@router.post("/projects/{name}/publishers", status_code=201)
def add_publisher(
    name: ProjectPath, body: PublisherCreate, principal: ManagePrincipalDep, services: ServicesDep
) -> PublisherOut:
    info = services.db.run_write(
        lambda s: tp.add_publisher(
            s,
            principal.actor,
            name,
            repository=body.repository,
            workflow=body.workflow,
            environment=body.environment,
            ref=body.ref,
            repository_owner_id=body.repository_owner_id,
            repository_id=body.repository_id,
            principal=principal,
        )
    )
    return PublisherOut.of(info)


@router.delete("/projects/{name}/publishers/{publisher_id}")
def remove_publisher(
    name: ProjectPath,
    publisher_id: PublisherId,
    principal: ManagePrincipalDep,
    services: ServicesDep,
) -> PublisherOut:
    info = services.db.run_write(
        lambda s: tp.remove_publisher(s, principal.actor, name, publisher_id, principal)
    )
    return PublisherOut.of(info)


@router.post("/trusted-publishing/exchange")
def exchange(body: ExchangeBody, request: Request, services: ServicesDep) -> ExchangeOut:
    """Trade a GitHub Actions OIDC token for a short-lived upload token (no other credential)."""
    source = client_address(request)
    result = throttled(
        request, lambda: tp.mint(services, body.token, project=body.project, source=source)
    )
    return ExchangeOut(**(result.__dict__ | {"projects": list(result.projects)}))
