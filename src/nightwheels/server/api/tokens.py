"""Personal API tokens: create (shown once), list, revoke, rotate."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from nightwheels.core.permissions import Permission
from nightwheels.db.models import utcnow
from nightwheels.server.api.deps import AuthFirstRoute, ManagePrincipalDep, ServicesDep
from nightwheels.services import tokens
from nightwheels.services.accounts import get_project
from nightwheels.services.tokens import CreatedToken, TokenInfo

router = APIRouter(tags=["tokens"], route_class=AuthFirstRoute)

PrefixPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="the token's prefix")]
ProjectPath = Annotated[str, Path(min_length=1, max_length=200)]
ProjectName = Annotated[str, Field(min_length=1, max_length=200)]


class TokenOut(BaseModel):
    name: str
    prefix: str
    owner: str
    permissions: list[str]
    projects: list[str] | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    status: Literal["active", "expired", "revoked"]
    warning: str | None = Field(description="set as expiry nears: rotate the token")

    @classmethod
    def of(cls, info: TokenInfo) -> TokenOut:
        return cls(
            name=info.name,
            prefix=info.prefix,
            owner=info.owner,
            permissions=info.permissions,
            projects=info.projects,
            created_at=info.created_at,
            expires_at=info.expires_at,
            last_used_at=info.last_used_at,
            revoked_at=info.revoked_at,
            status=info.status,  # type: ignore[arg-type]
            warning=info.warning,
        )


class TokenSecret(BaseModel):
    token: str = Field(description="the secret: shown once, store it now")
    name: str
    prefix: str
    owner: str | None
    permissions: list[str]
    projects: list[str] | None
    expires_at: datetime | None

    @classmethod
    def of(cls, created: CreatedToken) -> TokenSecret:
        return cls(
            token=created.secret,
            name=created.name,
            prefix=created.prefix,
            owner=created.owner,
            permissions=created.permissions,
            projects=created.projects,
            expires_at=created.expires_at,
        )


class TokenCreate(BaseModel):
    name: str = Field(default="upload", min_length=1, max_length=100)
    projects: list[ProjectName] = Field(default_factory=list, max_length=100)
    permission: Permission = Permission.UPLOAD
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


@router.get("/tokens")
def list_my_tokens(
    principal: ManagePrincipalDep,
    services: ServicesDep,
    include_inactive: bool = Query(False, description="also revoked and expired tokens"),
) -> list[TokenOut]:
    with services.db.read() as session:
        infos = tokens.my_tokens(session, principal, include_inactive=include_inactive)
        return [TokenOut.of(t) for t in infos]


@router.post("/tokens", status_code=201)
def create_token(
    body: TokenCreate, principal: ManagePrincipalDep, services: ServicesDep
) -> TokenSecret:
    expires_at = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None

    def run(session: Session) -> CreatedToken:
        return tokens.create_own_token(
            session,
            principal,
            name=body.name,
            projects=body.projects or None,
            permissions=[body.permission.value],
            expires_at=expires_at,
        )

    return TokenSecret.of(services.db.run_write(run))


@router.delete("/tokens/{prefix}")
def revoke_token(
    prefix: PrefixPath, principal: ManagePrincipalDep, services: ServicesDep
) -> TokenOut:
    def run(session: Session) -> TokenOut:
        row = tokens.revoke_token(session, principal.actor, prefix, principal)
        return TokenOut.of(tokens.token_info(session, row))

    return services.db.run_write(run)


@router.post("/tokens/{prefix}/rotate", status_code=201)
def rotate_token(
    prefix: PrefixPath, principal: ManagePrincipalDep, services: ServicesDep
) -> TokenSecret:
    created = services.db.run_write(
        lambda session: tokens.rotate_token(session, principal.actor, prefix, principal)
    )
    return TokenSecret.of(created)


@router.get("/projects/{name}/tokens")
def list_project_tokens(
    name: ProjectPath, principal: ManagePrincipalDep, services: ServicesDep
) -> list[TokenOut]:
    with services.db.read() as session:
        project = get_project(session, name)
        return [TokenOut.of(t) for t in tokens.project_tokens(session, project, principal)]
