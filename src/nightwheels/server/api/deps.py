"""Dependencies shared by API routers: services, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from nightwheels.errors import Unauthenticated
from nightwheels.server.auth import client_address, token_from_request
from nightwheels.services.auth import Principal, authenticate_token, require_manage
from nightwheels.services.context import Services

T = TypeVar("T")


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def read_session(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    with services.db.read() as session:
        yield session


# Declares the bearer scheme in the OpenAPI document; the header is parsed below (which
# also accepts twine-style Basic credentials).
_bearer = HTTPBearer(auto_error=False, description="a nightwheels token: nwt_...")


def optional_principal(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal | None:
    throttle = getattr(request.app.state, "throttle", None)
    source = client_address(request)
    if throttle is not None:
        throttle.check(source)
    try:
        token = token_from_request(request)
        if token is None:
            return None
        return authenticate_token(services.db, token, source)
    except Unauthenticated:
        if throttle is not None:
            throttle.failed(source)
        raise


def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthenticated("authentication required: send Authorization: Bearer <token>")
    return principal


ServicesDep = Annotated[Services, Depends(get_services)]
ReadSession = Annotated[Session, Depends(read_session)]
PrincipalDep = Annotated[Principal, Depends(require_principal)]
OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


def require_manage_principal(
    principal: Annotated[Principal, Depends(require_principal)],
) -> Principal:
    """Management endpoints: a user's token with the ``manage`` permission."""
    require_manage(principal)
    return principal


def throttled(request: Request, fn: Callable[[], T]) -> T:
    """Run a credential check (password, OIDC token) under the failed-authentication throttle."""
    throttle = getattr(request.app.state, "throttle", None)
    source = client_address(request)
    if throttle is not None:
        throttle.check(source)
    try:
        return fn()
    except Unauthenticated:
        if throttle is not None:
            throttle.failed(source)
        raise


ManagePrincipalDep = Annotated[Principal, Depends(require_manage_principal)]
