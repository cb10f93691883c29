"""Site admins' pages: the access request review queue, approve/deny, and the audit log.

Who may do what is decided by the services (``services.access``, ``services.auth``); a
non-admin gets their refusal as a 403 page.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from nightwheels.core.access import RequestStatus
from nightwheels.errors import InvalidRequest, NightwheelsError
from nightwheels.services import access, audit
from nightwheels.web.account import read, redirect, request_page, write
from nightwheels.web.security import page, principal, read_form, signed_in
from nightwheels.web.templating import render

AUDIT_PAGE = 50


@page
@signed_in
async def queue(request: Request) -> Response:
    me = principal(request)
    status = request.query_params.get("status", RequestStatus.PENDING.value)
    wanted = None if status == "all" else status
    rows = await read(request, lambda s: access.list_requests(s, me, status=wanted, everyone=True))
    statuses = ["all", *(s.value for s in RequestStatus)]
    context = {"requests": rows, "status": status, "statuses": statuses}
    return render(request, "admin_requests.html", context)


async def _decide(request: Request, decision: str) -> Response:
    form = await read_form(request)
    me = principal(request)
    request_id = int(request.path_params["id"])
    reason = form.get("reason", "")

    def run(session: Session) -> access.RequestView:
        if decision == "approve":
            return access.approve(session, me, request_id, reason)
        return access.deny(session, me, request_id, reason)

    try:
        await write(request, run)
    except NightwheelsError as exc:
        return await request_page(request, error=exc.message, status=exc.status)
    return redirect(request, f"/account/requests/{request_id}", f"{decision}d")


@page
@signed_in
async def approve(request: Request) -> Response:
    return await _decide(request, "approve")


@page
@signed_in
async def deny(request: Request) -> Response:
    return await _decide(request, "deny")


def _int(value: str | None, what: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidRequest(f"{what} must be a whole number")
    return int(value)


@page
@signed_in
async def audit_log(request: Request) -> Response:
    me = principal(request)
    params = request.query_params
    filters = {k: params.get(k, "").strip()[:200] for k in ("project", "actor", "action")}
    query = audit.EventQuery(
        project=filters["project"] or None,
        actor=filters["actor"] or None,
        action=filters["action"] or None,
        before=_int(params.get("before"), "before"),
        limit=AUDIT_PAGE,
    )

    def load(session: Session) -> list[dict[str, Any]]:
        return [audit.event_dict(e) for e in audit.read_events(session, me, query)]

    events = await read(request, load)
    older = events[-1]["id"] if len(events) == AUDIT_PAGE else None
    context = {"events": events, "filters": filters, "older": older}
    return render(request, "audit.html", context)
