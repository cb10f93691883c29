"""Sessions and forms for the web UI: cookies, CSRF, origin checks, bounded form bodies.

- The session cookie is HttpOnly, SameSite=Lax, Path=/, and Secure with the ``__Host-``
  prefix when the site is served over https (the request's scheme, or ``base_url``).
- Every POST must carry a CSRF token: the session's own token when signed in (synchroniser
  pattern), else the value of a separate ``nw_csrf`` cookie (double submit, for the sign-in
  form). Comparisons are constant-time. A POST whose ``Origin`` names another site is refused
  before the token is even looked at.
- Forms are ``application/x-www-form-urlencoded`` only, at most :data:`MAX_FORM_BYTES`.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nightwheels.config import Settings
from nightwheels.errors import (
    Forbidden,
    InvalidRequest,
    NightwheelsError,
    TooLarge,
    Unauthenticated,
)
from nightwheels.server.auth import client_address
from nightwheels.server.state import app_state
from nightwheels.services import web_sessions
from nightwheels.services.auth import Principal
from nightwheels.services.context import Services
from nightwheels.services.web_sessions import SessionUser
from nightwheels.web.templating import page_root, render

SESSION_COOKIE = "nw_session"
CSRF_COOKIE = "nw_csrf"
MAX_FORM_BYTES = 64 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]


def services_of(request: Request) -> Services:
    return app_state(request).services


def is_secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or (settings.base_url or "").startswith("https://")


def cookie_name(request: Request, base: str) -> str:
    return f"__Host-{base}" if is_secure(request, services_of(request).settings) else base


def set_cookie(
    response: Response, request: Request, base: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(request, base),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request, services_of(request).settings),
    )


def clear_cookie(response: Response, request: Request, base: str) -> None:
    set_cookie(response, request, base, "", max_age=0)


async def load_user(request: Request) -> SessionUser | None:
    """Resolve the session cookie (one indexed read; a write at most once a minute)."""
    cookie = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if not cookie:
        return None
    services = services_of(request)

    def resolve() -> SessionUser | None:
        with services.db.read() as session:
            user = web_sessions.resolve(session, services.settings, cookie)
        if user is not None and user.needs_touch:
            with services.db.write() as session:
                web_sessions.touch(session, user.session_id)
        return user

    return await run_in_threadpool(resolve)


def _same_origin(request: Request, settings: Settings) -> bool:
    origin = request.headers.get("origin")
    if origin is None:  # older browsers omit it on same-origin posts; the token still counts
        referer = request.headers.get("referer")
        if referer is None:
            return True
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    if settings.base_url:
        parts = urlsplit(settings.base_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin in allowed


async def read_form(request: Request) -> ImmutableMultiDict[str, str]:
    """The POSTed form, after the origin and CSRF checks (raises :class:`Forbidden`)."""
    settings = services_of(request).settings
    if not _same_origin(request, settings):
        raise Forbidden("this form was sent from another site; open the page here and retry")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("forms must be sent as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        raise TooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TooLarge(f"a form is at most {MAX_FORM_BYTES // 1024} KiB")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form could not be read (not UTF-8, or too many fields)") from None
    fields = ImmutableMultiDict([(k, v) for k, v in pairs if k != "csrf"])
    token = next((v for k, v in pairs if k == "csrf"), "")
    user: SessionUser | None = request.state.user
    if user is not None:
        ok = user.csrf_matches(token)
    else:
        expected = request.cookies.get(cookie_name(request, CSRF_COOKIE), "")
        ok = bool(expected) and hmac.compare_digest(expected.encode(), token.encode())
    if not ok:
        raise Forbidden(
            "the form's security token is missing or out of date (it changes when you sign in "
            "or out): reload the page and send the form again"
        )
    return fields


def anonymous_csrf(request: Request) -> str:
    """The double-submit token for forms shown before sign-in (reused while the cookie lives)."""
    existing = request.cookies.get(cookie_name(request, CSRF_COOKIE))
    if existing and 20 <= len(existing) <= 100:
        request.state.csrf = existing
        request.state.new_csrf = None
    else:
        request.state.csrf = secrets.token_urlsafe(32)
        request.state.new_csrf = request.state.csrf
    return str(request.state.csrf)


def principal(request: Request) -> Principal:
    """The signed-in user as a service principal (see ``web_sessions.principal``)."""
    user: SessionUser | None = request.state.user
    if user is None:
        raise Unauthenticated("sign in first")
    return web_sessions.principal(user, client_address(request))


def signed_in(fn: Endpoint) -> Endpoint:
    """Send visitors who are not signed in to the sign-in page, then back here."""

    @wraps(fn)
    async def endpoint(request: Request) -> Response:
        if request.state.user is None:
            if request.method != "GET":
                raise Unauthenticated("your session has ended: sign in again")
            target = "/account/sign-in?" + urlencode({"next": request.url.path})
            return RedirectResponse(page_root(request.url.path) + target.lstrip("/"), 303)
        return await fn(request)

    return endpoint


def error_page(request: Request, exc: NightwheelsError) -> Response:
    return render(request, "error.html", {"error": exc}, status=exc.status)


def page(fn: Endpoint) -> Endpoint:
    """Wrap a web endpoint: load the signed-in user; errors become an HTML page."""

    @wraps(fn)
    async def endpoint(request: Request) -> Response:
        started, cpu_started = time.perf_counter(), time.process_time()
        request.state.user = await load_user(request)
        request.state.csrf = request.state.user.csrf if request.state.user else ""
        request.state.new_csrf = None
        try:
            response = await fn(request)
        except NightwheelsError as exc:
            response = error_page(request, exc)
        if request.state.new_csrf:
            set_cookie(response, request, CSRF_COOKIE, request.state.new_csrf, max_age=None)
        # Server time of the page (session, queries, rendering): what benchmarks/web_pages.py reads.
        # ``cpu`` is the process's CPU time meanwhile: what the page costs, however busy the host.
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu_started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}, cpu;dur={cpu:.1f}"
        return response

    return endpoint
