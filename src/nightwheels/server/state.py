"""The server's shared objects: built once in ``create_app``, read through :func:`app_state`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from nightwheels.services.context import Services
from nightwheels.services.throttle import AuthThrottle

if TYPE_CHECKING:
    from nightwheels.server.asof import AsOfPages
    from nightwheels.server.files import FileLookup
    from nightwheels.server.health import Readiness
    from nightwheels.server.pages import PageCache
    from nightwheels.services.trusted_publishing import OidcVerifier

STATE_KEY = "nightwheels"


@dataclass
class AppState:
    services: Services
    pages: PageCache
    asof: AsOfPages
    file_lookup: FileLookup
    throttle: AuthThrottle
    readiness: Readiness
    background: list[Any] = field(default_factory=list)  # objects with start()/stop()
    oidc_verifier: OidcVerifier | None = None  # made on first use (trusted publishing)


def app_state(connection: HTTPConnection) -> AppState:
    """The state of the application serving ``connection`` (the site or its /api/v1 mount)."""
    state: AppState = getattr(connection.app.state, STATE_KEY)
    return state
