"""Dependencies shared by API routers: services, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from nightwheels.errors import Unauthenticated
from nightwheels.server.auth import authenticate, check_token
from nightwheels.server.state import app_state
from nightwheels.services.auth import Principal, require_manage
from nightwheels.services.context import Services

T = TypeVar("T")
AUTHENTICATION_REQUIRED = "authentication required: send Authorization: Bearer <token>"


def get_services(request: Request) -> Services:
    return app_state(request).services


def read_session(services: Annotated[Services, Depends(get_services)]) -> Iterator[Session]:
    with services.db.read() as session:
        yield session


# Declares the bearer scheme in the OpenAPI document; the header is parsed by
# ``server.auth.authenticate`` (which also accepts twine-style Basic credentials).
_bearer = HTTPBearer(auto_error=False, description="a nightwheels token: nwt_...")


def optional_principal(
    request: Request,
    _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal | None:
    return authenticate(request)


def require_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthenticated(AUTHENTICATION_REQUIRED)
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


ManagePrincipalDep = Annotated[Principal, Depends(require_manage_principal)]


def throttled(request: Request, fn: Callable[[], T]) -> T:
    """Run a token check other than ``Authorization`` (an OIDC token) under the throttle."""
    return check_token(request, fn)


def _uses(dependant: Dependant, call: Callable[..., object]) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


class AuthFirstRoute(APIRoute):
    """An endpoint that checks credentials before its body is read (FastAPI reads the body
    first): a request without a valid token is refused without a byte of it read, and the
    principal is cached for the endpoint's own dependency."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        required = _uses(self.dependant, require_principal)
        if not required and not _uses(self.dependant, optional_principal):
            return handler

        async def authenticated_first(request: Request) -> Response:
            principal = await run_in_threadpool(authenticate, request)
            if principal is None and required:
                raise Unauthenticated(AUTHENTICATION_REQUIRED)
            return await handler(request)

        return authenticated_first
