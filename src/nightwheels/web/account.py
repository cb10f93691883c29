"""Signed-in pages: sign in/out, the user's projects, tokens, access requests.

Every change goes through a service (``services.tokens``, ``services.access``) with the signed-in
user as principal, so the web UI applies exactly the rules of the API and the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nightwheels.core.permissions import Permission
from nightwheels.errors import InvalidRequest, NightwheelsError
from nightwheels.server.auth import check_password
from nightwheels.services import access, accounts, browse, tokens, web_sessions
from nightwheels.services.tokens import CreatedToken
from nightwheels.web.security import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    anonymous_csrf,
    clear_cookie,
    client_address,
    page,
    principal,
    read_form,
    services_of,
    set_cookie,
    signed_in,
)
from nightwheels.web.templating import page_root, render

T = TypeVar("T")

# Token lifetimes offered by the form, in days (0: no expiry).
TOKEN_LIFETIMES = (7, 30, 90, 180, 365, 0)
DEFAULT_TOKEN_DAYS = 90
NOTICES = {
    "revoked": "The token was revoked: it stopped working at once.",
    "filed": "Your request was filed. Site admins will review it; follow it here.",
    "withdrawn": "The request was withdrawn.",
    "commented": "Your comment was added.",
    "approved": "The request was approved: the requester is now an admin of the project.",
    "denied": "The request was denied.",
    "password": "Your password was changed; your other sessions were signed out.",
}


async def read(request: Request, fn: Callable[[Session], T]) -> T:
    services = services_of(request)

    def run() -> T:
        with services.db.read() as session:
            return fn(session)

    return await run_in_threadpool(run)


async def write(request: Request, fn: Callable[[Session], T]) -> T:
    return await run_in_threadpool(services_of(request).db.run_write, fn)


def redirect(request: Request, target: str, notice: str | None = None) -> Response:
    """303 to a path of this site (relative, so it works under any prefix)."""
    url = page_root(request.url.path) + target.lstrip("/")
    if notice:
        url += ("&" if "?" in url else "?") + f"notice={notice}"
    return RedirectResponse(url, status_code=303)


def notice(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("notice", ""))


def _safe_next(value: str | None) -> str:
    """Only a path on this site: never ``//other.example`` or ``https://...``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/account/"


# -- sign in / out ---------------------------------------------------------------------


@page
async def sign_in(request: Request) -> Response:
    if request.method == "GET":
        if request.state.user is not None:
            return redirect(request, _safe_next(request.query_params.get("next")))
        anonymous_csrf(request)
        context = {"next": _safe_next(request.query_params.get("next")), "error": None, "name": ""}
        return render(request, "sign_in.html", context)
    form = await read_form(request)
    name, password = form.get("user", "").strip(), form.get("password", "")
    target = _safe_next(form.get("next"))
    source = client_address(request)
    services = services_of(request)
    try:
        if not name or not password:
            raise InvalidRequest("enter your user name and password")

        def run(session: Session) -> web_sessions.NewSession:
            user = accounts.authenticate_password(session, name, password)
            return web_sessions.start(session, services.settings, user, source)

        new = await run_in_threadpool(
            check_password, request, name, lambda: services.db.run_write(run)
        )
    except NightwheelsError as exc:
        anonymous_csrf(request)
        context = {"next": target, "error": exc.message, "name": name}
        return render(request, "sign_in.html", context, status=exc.status)
    response = redirect(request, target)
    lifetime = int(services.settings.session_hours * 3600)
    set_cookie(response, request, SESSION_COOKIE, new.cookie, max_age=lifetime)
    clear_cookie(response, request, CSRF_COOKIE)
    return response


@page
async def sign_out(request: Request) -> Response:
    if request.state.user is not None:
        await read_form(request)  # a sign-out needs the session's CSRF token too
        user = request.state.user
        actor = principal(request).actor
        await write(request, lambda s: web_sessions.end(s, user.session_id, actor))
    response = redirect(request, "/")
    clear_cookie(response, request, SESSION_COOKIE)
    return response


# -- account home ----------------------------------------------------------------------


@page
@signed_in
async def home(request: Request) -> Response:
    me = principal(request)
    settings = services_of(request).settings

    def load(session: Session) -> dict[str, Any]:
        user = accounts.get_user(session, me.user_name)
        return {
            "projects": browse.user_projects(session, settings, me.user_id, datetime.now(UTC)),
            "tokens": tokens.list_tokens(session, user=user),
            "requests": access.list_requests(session, me, status="pending"),
        }

    context = await read(request, load)
    return render(request, "account.html", {**context, "notice": notice(request)})


# -- password ----------------------------------------------------------------------------


@page
@signed_in
async def password(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "password.html", {"error": None})
    form = await read_form(request)
    current, new = form.get("current", ""), form.get("new", "")
    me = principal(request)
    session_id = request.state.user.session_id
    services = services_of(request)

    def run(session: Session) -> None:
        user = accounts.get_user(session, me.user_name)
        accounts.change_password(session, me.actor, user, current, new, keep_session=session_id)

    try:
        if new != form.get("confirm", ""):
            raise InvalidRequest("the two new passwords differ")
        await run_in_threadpool(
            check_password, request, me.user_name, lambda: services.db.run_write(run)
        )
    except NightwheelsError as exc:
        return render(request, "password.html", {"error": exc.message}, status=exc.status)
    return redirect(request, "/account/", "password")


# -- tokens ------------------------------------------------------------------------------


async def _tokens_page(
    request: Request,
    *,
    created: CreatedToken | None = None,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    me = principal(request)
    settings = services_of(request).settings

    def load(session: Session) -> dict[str, Any]:
        user = accounts.get_user(session, me.user_name)
        return {
            "tokens": tokens.list_tokens(session, user=user, include_inactive=True),
            "projects": browse.user_projects(session, settings, me.user_id, datetime.now(UTC)),
        }

    context = await read(request, load)
    context.update(
        created=created,
        error=error,
        form=form
        or {
            "name": "",
            "permission": "upload",
            "projects": [],
            "days": DEFAULT_TOKEN_DAYS,
            "other": "",
        },
        lifetimes=TOKEN_LIFETIMES,
        notice=notice(request),
    )
    return render(request, "tokens.html", context, status=status)


@page
@signed_in
async def token_list(request: Request) -> Response:
    if request.method == "GET":
        return await _tokens_page(request)
    form = await read_form(request)
    me = principal(request)
    chosen = form.getlist("project") + form.get("other", "").replace(",", " ").split()
    permission = form.get("permission", Permission.UPLOAD.value)
    values = {
        "name": form.get("name", "").strip(),
        "permission": permission,
        "projects": form.getlist("project"),
        "days": form.get("days", ""),
        "other": form.get("other", ""),
    }
    try:
        days = int(values["days"])
    except ValueError:
        days = -1
    if days not in TOKEN_LIFETIMES:
        return await _tokens_page(
            request, error="choose a lifetime from the list", form=values, status=400
        )
    expires_at = datetime.now(UTC) + timedelta(days=days) if days else None

    def run(session: Session) -> CreatedToken:
        return tokens.create_own_token(
            session,
            me,
            name=values["name"],
            projects=chosen or None,
            permissions=[permission],
            expires_at=expires_at,
        )

    try:
        created = await write(request, run)
    except NightwheelsError as exc:
        return await _tokens_page(request, error=exc.message, form=values, status=exc.status)
    # The secret is in this response only: never stored, never in a URL, never cached.
    return await _tokens_page(request, created=created)


@page
@signed_in
async def token_revoke(request: Request) -> Response:
    await read_form(request)
    me = principal(request)
    prefix = request.path_params["prefix"]
    await write(request, lambda s: tokens.revoke_token(s, me.actor, prefix, me))
    return redirect(request, "/account/tokens", "revoked")


# -- access requests -----------------------------------------------------------------------


async def _requests_page(
    request: Request,
    *,
    error: str | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    me = principal(request)
    mine = await read(request, lambda s: access.list_requests(s, me, status=None))
    context = {
        "requests": mine,
        "error": error,
        "form": form
        or {"project": request.query_params.get("project", ""), "reason": "", "repository": ""},
        "notice": notice(request),
    }
    return render(request, "requests.html", context, status=status)


@page
@signed_in
async def request_list(request: Request) -> Response:
    if request.method == "GET":
        return await _requests_page(request)
    form = await read_form(request)
    me = principal(request)
    values = {k: form.get(k, "") for k in ("project", "reason", "repository")}
    try:

        def run(session: Session) -> access.RequestView:
            return access.request_access(
                session, me, values["project"].strip(), values["reason"], values["repository"]
            )

        filed = await write(request, run)
    except NightwheelsError as exc:
        return await _requests_page(request, error=exc.message, form=values, status=exc.status)
    return redirect(request, f"/account/requests/{filed.id}", "filed")


def _request_id(request: Request) -> int:
    return int(request.path_params["id"])


async def request_page(
    request: Request, *, error: str | None = None, comment: str = "", status: int = 200
) -> Response:
    me = principal(request)
    request_id = _request_id(request)
    view = await read(request, lambda s: access.get_request(s, me, request_id))
    context = {
        "req": view,
        "is_requester": view.requester == me.user_name,
        "error": error,
        "comment": comment,
        "notice": notice(request),
    }
    return render(request, "request.html", context, status=status)


@page
@signed_in
async def request_detail(request: Request) -> Response:
    return await request_page(request)


@page
@signed_in
async def request_comment(request: Request) -> Response:
    form = await read_form(request)
    me = principal(request)
    request_id = _request_id(request)
    body = form.get("body", "")
    try:
        await write(request, lambda s: access.comment(s, me, request_id, body))
    except NightwheelsError as exc:
        return await request_page(request, error=exc.message, comment=body, status=exc.status)
    return redirect(request, f"/account/requests/{request_id}", "commented")


@page
@signed_in
async def request_withdraw(request: Request) -> Response:
    await read_form(request)
    me = principal(request)
    request_id = _request_id(request)
    try:
        await write(request, lambda s: access.withdraw(s, me, request_id))
    except NightwheelsError as exc:
        return await request_page(request, error=exc.message, status=exc.status)
    return redirect(request, f"/account/requests/{request_id}", "withdrawn")
