"""Reviewed access requests (SPEC 4, "Process for Adding New Projects").

A maintainer files a request for a project; site admins ask questions in comments, then
approve or deny with a reason. An admin may not approve a request for a project they
belong to, nor one from their own organisation. Approving creates the project if new and
makes the requester its admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.access import (
    MAX_COMMENT_LENGTH,
    MAX_REASON_LENGTH,
    RequestStatus,
    approval_conflict,
)
from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import Role
from nightwheels.db.models import AccessRequest, AccessRequestComment, AuditEvent, User, utcnow
from nightwheels.db.queries import project_by_name
from nightwheels.errors import Conflict, Forbidden, InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.accounts import get_or_create_project, set_role
from nightwheels.services.auth import (
    Principal,
    require_manage,
    require_site_admin,
    require_token_scope,
    user_role,
)

# Organisation changes read per approval (a user with more is refused by the oldest ones).
MAX_ORGANISATION_CHANGES = 100


@dataclass(frozen=True)
class Comment:
    author: str | None
    body: str
    at: datetime


@dataclass(frozen=True)
class RequestView:
    id: int
    project: str
    requester: str
    requester_organisation: str | None
    reason: str
    repository_url: str | None
    status: str
    created_at: datetime
    project_exists: bool
    decided_at: datetime | None = None
    decided_by: str | None = None
    decision_reason: str | None = None
    comments: list[Comment] = field(default_factory=list)


def _text(value: str | None, what: str, limit: int, hint: str = "") -> str:
    value = (value or "").strip()
    if not value:
        raise InvalidRequest(f"the {what} is empty{hint}")
    if len(value) > limit:
        raise InvalidRequest(f"the {what} has {len(value)} characters; at most {limit} are allowed")
    if "\x00" in value:
        raise InvalidRequest(f"the {what} contains a NUL character")
    return value


def _url(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(value) > 500:
        raise InvalidRequest(f"{value!r} is not a repository URL (http or https, at most 500)")
    return value


def _user_name(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    user = session.get(User, user_id)
    return user.name if user else None


def _view(session: Session, req: AccessRequest, *, with_comments: bool = True) -> RequestView:
    requester = session.get(User, req.user_id)
    exists = project_by_name(session, req.project_name) is not None
    comments: list[Comment] = []
    if with_comments:
        rows = session.execute(
            select(AccessRequestComment)
            .where(AccessRequestComment.request_id == req.id)
            .order_by(AccessRequestComment.id)
        ).scalars()
        comments = [Comment(_user_name(session, c.author_id), c.body, c.created_at) for c in rows]
    return RequestView(
        id=req.id,
        project=req.project_name,
        requester=requester.name if requester else "?",
        requester_organisation=requester.organisation if requester else None,
        reason=req.reason,
        repository_url=req.repository_url,
        status=req.status,
        created_at=req.created_at,
        project_exists=exists,
        decided_at=req.decided_at,
        decided_by=_user_name(session, req.decided_by_id),
        decision_reason=req.decision_reason,
        comments=comments,
    )


def _get(session: Session, request_id: int) -> AccessRequest:
    req = session.get(AccessRequest, request_id)
    if req is None:
        raise NotFound(f"no access request #{request_id}")
    return req


def _require_visible(principal: Principal, req: AccessRequest) -> None:
    """The requester and site admins see a request; nobody else.

    A token scoped to projects reaches only its own projects' requests, even its owner's.
    """
    require_manage(principal)
    if req.user_id != principal.user_id and not principal.is_admin:
        raise Forbidden(
            f"access request #{req.id} is not yours: only its requester and site admins see it"
        )
    require_token_scope(principal, req.project_name)


def _require_pending(req: AccessRequest) -> None:
    if req.status != RequestStatus.PENDING.value:
        raise Conflict(f"access request #{req.id} is already {req.status}")


def request_access(
    session: Session,
    principal: Principal,
    project: str,
    reason: str,
    repository_url: str | None = None,
) -> RequestView:
    require_manage(principal)
    name = normalize_name(project)
    require_token_scope(principal, name)
    reason = _text(
        reason,
        "reason",
        MAX_REASON_LENGTH,
        ": say who you are and why you need upload access, for the admins who review it",
    )
    url = _url(repository_url)
    existing = project_by_name(session, name)
    if existing is not None:
        role = user_role(session, principal.user_id, existing.id)
        if role is not None:
            raise Conflict(f"you are already {role} of {name!r}; ask its admins for changes")
    pending = session.execute(
        select(AccessRequest.id).where(
            AccessRequest.user_id == principal.user_id,
            AccessRequest.project_name == name,
            AccessRequest.status == RequestStatus.PENDING.value,
        )
    ).scalar_one_or_none()
    if pending is not None:
        raise Conflict(f"you already have a pending request for {name!r}: #{pending}")
    assert principal.user_id is not None
    req = AccessRequest(
        user_id=principal.user_id,
        project_name=name,
        reason=reason,
        repository_url=url,
        status=RequestStatus.PENDING.value,
    )
    session.add(req)
    session.flush()
    audit.record(
        session, principal.actor, "access.request", project=name, target=f"#{req.id}", url=url
    )
    return _view(session, req)


def list_requests(
    session: Session,
    principal: Principal,
    *,
    status: str | None = RequestStatus.PENDING.value,
    everyone: bool = False,
) -> list[RequestView]:
    """The caller's own requests; with ``everyone``, all (site admins only)."""
    require_manage(principal)
    stmt = select(AccessRequest).order_by(AccessRequest.id.desc())
    if everyone:
        require_site_admin(principal, "list everyone's access requests")
    else:
        stmt = stmt.where(AccessRequest.user_id == principal.user_id)
        if principal.projects is not None:  # a scoped token sees its projects' requests only
            stmt = stmt.where(AccessRequest.project_name.in_(sorted(principal.projects)))
    if status is not None:
        try:
            RequestStatus(status)
        except ValueError:
            choices = ", ".join(s.value for s in RequestStatus)
            raise InvalidRequest(f"{status!r} is not a request status: use {choices}") from None
        stmt = stmt.where(AccessRequest.status == status)
    rows = session.execute(stmt.limit(500)).scalars()
    return [_view(session, r, with_comments=False) for r in rows]


def get_request(session: Session, principal: Principal, request_id: int) -> RequestView:
    req = _get(session, request_id)
    _require_visible(principal, req)
    return _view(session, req)


def comment(session: Session, principal: Principal, request_id: int, body: str) -> RequestView:
    """Reviewer questions and requester answers, while the request is pending."""
    req = _get(session, request_id)
    _require_visible(principal, req)
    _require_pending(req)
    body = _text(body, "comment", MAX_COMMENT_LENGTH)
    session.add(AccessRequestComment(request_id=req.id, author_id=principal.user_id, body=body))
    session.flush()
    audit.record(
        session, principal.actor, "access.comment", project=req.project_name, target=f"#{req.id}"
    )
    return _view(session, req)


def organisations_since(session: Session, user_name: str, since: datetime) -> list[str | None]:
    """Every organisation ``user_name`` held since ``since`` besides the current one, from the
    audit log: the value set last before ``since`` (``user.create`` or ``user.update``), and
    the values before and after each change since."""
    held: list[str | None] = []
    user_events = (
        select(AuditEvent.details)
        .where(
            AuditEvent.action.in_(("user.create", "user.update")),
            AuditEvent.target == user_name,
        )
        .limit(MAX_ORGANISATION_CHANGES)
    )
    before = session.execute(
        user_events.where(AuditEvent.at < since).order_by(AuditEvent.id.desc())
    ).scalars()
    for details in before:
        if details and "organisation" in details:
            held.append(details["organisation"])
            break
    after = session.execute(
        user_events.where(AuditEvent.at >= since).order_by(AuditEvent.id)
    ).scalars()
    for details in after:
        if details and "organisation" in details:
            held.append((details.get("previous") or {}).get("organisation"))
            held.append(details["organisation"])
    return held


def approve(
    session: Session, principal: Principal, request_id: int, reason: str | None = None
) -> RequestView:
    require_site_admin(principal, "approve access requests")
    req = _get(session, request_id)
    _require_pending(req)
    requester = session.get(User, req.user_id)
    if requester is None or requester.disabled:
        raise Conflict(f"the account that filed request #{req.id} is disabled")
    project = project_by_name(session, req.project_name)
    reviewer = session.get(User, principal.user_id)
    conflict = approval_conflict(
        reviewer=principal.user_name,
        reviewer_organisation=reviewer.organisation if reviewer else principal.organisation,
        reviewer_role=user_role(session, principal.user_id, project.id) if project else None,
        requester=requester.name,
        requester_organisation=requester.organisation,
        project=req.project_name,
        reviewer_organisations=[
            principal.organisation,
            *organisations_since(session, principal.user_name, req.created_at),
        ],
        requester_organisations=organisations_since(session, requester.name, req.created_at),
    )
    if conflict:
        raise Forbidden(conflict)
    actor = principal.actor
    project = get_or_create_project(session, actor, req.project_name)
    if project.repository_url is None and req.repository_url:
        project.repository_url = req.repository_url
    set_role(session, actor, requester, project, Role.ADMIN)
    req.status = RequestStatus.APPROVED.value
    req.decided_at = utcnow()
    req.decided_by_id = principal.user_id
    req.decision_reason = (reason or "").strip() or None
    audit.record(
        session,
        actor,
        "access.approve",
        project=project.name,
        target=f"#{req.id}",
        requester=requester.name,
        reason=req.decision_reason,
    )
    return _view(session, req)


def deny(session: Session, principal: Principal, request_id: int, reason: str) -> RequestView:
    require_site_admin(principal, "deny access requests")
    req = _get(session, request_id)
    _require_pending(req)
    if req.user_id == principal.user_id:
        raise Forbidden("you cannot decide your own request: withdraw it instead")
    reason = _text(reason, "reason", MAX_REASON_LENGTH, ": tell the requester why")
    req.status = RequestStatus.DENIED.value
    req.decided_at = utcnow()
    req.decided_by_id = principal.user_id
    req.decision_reason = reason
    audit.record(
        session,
        principal.actor,
        "access.deny",
        project=req.project_name,
        target=f"#{req.id}",
        reason=reason,
    )
    return _view(session, req)


def withdraw(session: Session, principal: Principal, request_id: int) -> RequestView:
    require_manage(principal)
    req = _get(session, request_id)
    if req.user_id != principal.user_id:
        raise Forbidden(
            f"access request #{req.id} is not yours: only its requester may withdraw it"
        )
    require_token_scope(principal, req.project_name)
    _require_pending(req)
    req.status = RequestStatus.WITHDRAWN.value
    req.decided_at = utcnow()
    audit.record(
        session, principal.actor, "access.withdraw", project=req.project_name, target=f"#{req.id}"
    )
    return _view(session, req)
