"""Who am I, signing in with a password (for a manage token), and site admins' user list."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from nightwheels.db.models import utcnow
from nightwheels.server.api.deps import (
    AuthFirstRoute,
    ManagePrincipalDep,
    PrincipalDep,
    ServicesDep,
)
from nightwheels.server.api.tokens import TokenSecret
from nightwheels.server.auth import check_password, client_address
from nightwheels.services import accounts, tokens
from nightwheels.services.accounts import UserInfo
from nightwheels.services.audit import Actor

router = APIRouter(tags=["users"], route_class=AuthFirstRoute)

UserPath = Annotated[str, Path(min_length=1, max_length=100)]
LOGIN_TOKEN_DAYS = 30


class TokenSummary(BaseModel):
    name: str
    permissions: list[str]
    projects: list[str] | None
    expires_at: datetime | None
    warning: str | None


class Me(BaseModel):
    name: str
    organisation: str | None
    is_admin: bool
    trusted_publisher: bool
    token: TokenSummary


class UserOut(BaseModel):
    name: str
    email: str | None
    organisation: str | None
    is_admin: bool
    disabled: bool
    created_at: datetime
    has_password: bool

    @classmethod
    def of(cls, info: UserInfo) -> UserOut:
        return cls(**info.__dict__)


class Login(BaseModel):
    user: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)
    token_name: str = Field(default="login", min_length=1, max_length=100)
    expires_in_days: float = Field(default=LOGIN_TOKEN_DAYS, gt=0, le=365)


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=300)
    organisation: str | None = Field(default=None, max_length=200)
    is_admin: bool = False
    password: str | None = Field(default=None, max_length=1024)


class UserUpdate(BaseModel):
    email: str | None = Field(default=None, max_length=300)
    organisation: str | None = Field(default=None, max_length=200)
    is_admin: bool | None = None
    disabled: bool | None = None


@router.get("/me")
def me(principal: PrincipalDep) -> Me:
    """The caller and the token they called with (any token, upload tokens too)."""
    return Me(
        name=principal.user_name,
        organisation=principal.organisation,
        is_admin=principal.is_admin,
        trusted_publisher=principal.publisher_id is not None,
        token=TokenSummary(
            name=principal.token_name,
            permissions=sorted(principal.permissions),
            projects=None if principal.projects is None else sorted(principal.projects),
            expires_at=principal.expires_at,
            warning=principal.expiry_warning(),
        ),
    )


@router.post("/login", status_code=201)
def login(body: Login, request: Request, services: ServicesDep) -> TokenSecret:
    """Trade a user name and password for a manage token (``nightwheels login``)."""
    actor = Actor(name=body.user, source=client_address(request))

    def run(session: Session) -> tokens.CreatedToken:
        user = accounts.authenticate_password(session, body.user, body.password)
        return tokens.create_token(
            session,
            actor,
            user,
            name=body.token_name,
            projects=None,
            permissions=["manage"],
            expires_at=utcnow() + timedelta(days=body.expires_in_days),
        )

    return TokenSecret.of(check_password(request, body.user, lambda: services.db.run_write(run)))


@router.get("/users")
def list_users(principal: ManagePrincipalDep, services: ServicesDep) -> list[UserOut]:
    with services.db.read() as session:
        return [UserOut.of(accounts.user_info(u)) for u in accounts.list_users(session, principal)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, principal: ManagePrincipalDep, services: ServicesDep) -> UserOut:
    def run(session: Session) -> UserOut:
        user = accounts.create_user(
            session,
            principal.actor,
            body.name,
            email=body.email,
            organisation=body.organisation,
            is_admin=body.is_admin,
            principal=principal,
        )
        if body.password is not None:
            accounts.set_password(session, principal.actor, user, body.password)
        return UserOut.of(accounts.user_info(user))

    return services.db.run_write(run)


@router.patch("/users/{name}")
def update_user(
    name: UserPath, body: UserUpdate, principal: ManagePrincipalDep, services: ServicesDep
) -> UserOut:
    fields = body.model_fields_set

    def run(session: Session) -> UserOut:
        user = accounts.get_user(session, name)
        kwargs = {k: getattr(body, k) for k in ("email", "organisation") if k in fields}
        accounts.update_user(
            session,
            principal.actor,
            user,
            is_admin=body.is_admin if "is_admin" in fields else None,
            disabled=body.disabled if "disabled" in fields else None,
            principal=principal,
            **kwargs,
        )
        return UserOut.of(accounts.user_info(user))

    return services.db.run_write(run)
