"""Publishing sessions: a night's files become visible all at once, or not at all.

numpy's and scipy's wheels come from a dozen CI jobs. Uploaded one by one, a reader in
between sees half a night (tonight's Linux wheels next to yesterday's Windows ones), and a
re-uploaded ``X.Y.0.dev0`` changes file by file. A session (the idea of PEP 694's upload
sessions) fixes both: each job uploads into the same named session
(``nightwheels upload --session NAME``, or twine/``uv publish`` to the session's upload URL),
the files are stored but listed nowhere except the session's preview index, and a final
``publish`` makes them all live in one transaction, by the same rules as any upload
(:func:`~nightwheels.services.publish.publish_pending`). ``nightwheels upload --atomic`` is a
session of one job.

A session belongs to one project and one label. Opening a name that is already open
returns that session, so the jobs of a matrix need not coordinate who creates it. A
session not published by its expiry (``NIGHTWHEELS_SESSION_TTL_HOURS``, 24 by default) is
expired by the maintenance round: its rows are deleted, and its blobs, referenced by
nothing, are collected by ``gc`` like any unreferenced blob.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from nightwheels.core.names import DEFAULT_LABEL, normalize_name, validate_label
from nightwheels.core.project_status import offers_files
from nightwheels.core.simple_pages import FileEntry, ProjectListing
from nightwheels.db.models import PendingFile, Project, UploadSession, utcnow
from nightwheels.errors import Conflict, InvalidName, NotFound
from nightwheels.services import audit, listing
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal, require_upload
from nightwheels.services.context import Services
from nightwheels.services.publish import publish_pending

__all__ = [
    "DEFAULT_TTL",
    "SessionInfo",
    "cancel_session",
    "expire_sessions",
    "find_open_session",
    "get_session",
    "open_session",
    "pending_file",
    "preview_listing",
    "publish_session",
]

DEFAULT_TTL = timedelta(hours=24)
MAX_TTL = timedelta(days=7)
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?", re.ASCII)
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{16,40}", re.ASCII)


@dataclass(frozen=True)
class PendingEntry:
    filename: str
    version: str
    sha256: str
    size: int
    uploaded_at: datetime
    uploader: str


@dataclass(frozen=True)
class SessionInfo:
    id: str  # the public id, in URLs
    project: str
    name: str
    label: str
    state: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    files: tuple[PendingEntry, ...]


def _info(found: UploadSession) -> SessionInfo:
    return SessionInfo(
        id=found.public_id,
        project=found.project.name,
        name=found.name,
        label=found.label,
        state=found.state,
        created_by=found.created_by,
        created_at=found.created_at,
        expires_at=found.expires_at,
        closed_at=found.closed_at,
        files=tuple(
            PendingEntry(f.filename, f.version, f.sha256, f.size, f.uploaded_at, f.uploader)
            for f in sorted(found.files, key=lambda f: f.filename)
        ),
    )


def validate_session_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidName(
            f"{name[:100]!r} is not a valid session name: use 1-100 letters, digits, '.', "
            "'_' or '-' (for example nightly-${{ github.run_id }})"
        )
    return name


def _project(session: Session, principal: Principal, name: str) -> Project:
    project = require_upload(session, principal, normalize_name(name))
    if project is None:
        raise NotFound(
            f"no project named {name!r}: upload sessions publish to existing projects "
            "(a first upload creates one)"
        )
    return project


def _by_public_id(session: Session, public_id: str) -> UploadSession:
    found = None
    if _PUBLIC_ID.fullmatch(public_id):
        found = session.execute(
            select(UploadSession).where(UploadSession.public_id == public_id)
        ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no upload session {public_id[:40]!r}")
    return found


def open_session(
    services: Services,
    principal: Principal,
    project_name: str,
    name: str,
    *,
    label: str = DEFAULT_LABEL,
    ttl: timedelta | None = None,
) -> tuple[SessionInfo, bool]:
    """The open session ``name`` of a project, created if there is none; (info, created)."""
    name = validate_session_name(name)
    label = validate_label(label)
    ttl = ttl or timedelta(hours=services.settings.session_ttl_hours)
    if not timedelta(minutes=1) <= ttl <= MAX_TTL:
        raise InvalidName("a session lives between 1 minute and 7 days")

    def run(session: Session) -> tuple[SessionInfo, bool]:
        project = _project(session, principal, project_name)
        now = utcnow()
        found = session.execute(
            select(UploadSession).where(
                UploadSession.project_id == project.id,
                UploadSession.name == name,
                UploadSession.state == "open",
                UploadSession.expires_at > now,
            )
        ).scalar_one_or_none()
        if found is not None:
            if found.label != label:
                raise Conflict(
                    f"upload session {name!r} is open for label {found.label!r}, not {label!r}"
                )
            return _info(found), False
        created = UploadSession(
            public_id=secrets.token_urlsafe(18),
            project=project,
            name=name,
            label=label,
            state="open",
            created_by=principal.user_name,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(created)
        audit.record(
            session,
            principal.actor,
            "session.open",
            project=project.name,
            target=name,
            label=label,
            upload_session=created.public_id,
            token=principal.token_name,
        )
        session.flush()
        return _info(created), True

    return services.db.run_write(run)


def find_open_session(
    services: Services, principal: Principal, project_name: str, name: str
) -> SessionInfo:
    """The open session of a project by its name (how a CI job finds tonight's)."""
    with services.db.read() as session:
        project = _project(session, principal, project_name)
        found = session.execute(
            select(UploadSession).where(
                UploadSession.project_id == project.id,
                UploadSession.name == name,
                UploadSession.state == "open",
                UploadSession.expires_at > utcnow(),
            )
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"project {project.name!r} has no open upload session {name[:100]!r}")
        return _info(found)


def get_session(services: Services, principal: Principal, public_id: str) -> SessionInfo:
    """A session, for whoever may upload to its project."""
    with services.db.read() as session:
        found = _by_public_id(session, public_id)
        _project(session, principal, found.project.name)
        return _info(found)


def _closing(session: Session, principal: Principal, public_id: str) -> UploadSession:
    found = _by_public_id(session, public_id)
    _project(session, principal, found.project.name)
    session.refresh(found, with_for_update=True)
    if found.state != "open":
        raise Conflict(f"upload session {found.name!r} is already {found.state}")
    if found.expires_at <= utcnow():
        raise Conflict(
            f"upload session {found.name!r} expired at {found.expires_at:%Y-%m-%d %H:%M} UTC: "
            "upload the files again into a new session"
        )
    return found


def _close(
    session: Session,
    found: UploadSession,
    state: str,
    actor: Actor,
    now: datetime,
    **details: object,
) -> SessionInfo:
    """End a session (published, cancelled or expired): audit it, drop its pending rows,
    and answer how it read when it closed."""
    found.state = state
    found.closed_at = now
    audit.record(
        session,
        actor,
        f"session.{_ACTIONS[state]}",
        project=found.project.name,
        target=found.name,
        upload_session=found.public_id,
        files=len(found.files),
        **details,
    )
    info = _info(found)
    session.execute(delete(PendingFile).where(PendingFile.session_id == found.id))
    return info


_ACTIONS = {"published": "publish", "cancelled": "cancel", "expired": "expire"}


def publish_session(services: Services, principal: Principal, public_id: str) -> SessionInfo:
    """Make every file of an open session live at once (one transaction, one serial)."""

    def run(session: Session) -> tuple[SessionInfo, str, int | None]:
        found = _closing(session, principal, public_id)
        if not found.files:
            raise Conflict(f"upload session {found.name!r} has no files to publish")
        serial = publish_pending(session, services, principal, found)
        info = _close(
            session, found, "published", principal.actor, utcnow(),
            label=found.label, token=principal.token_name,
        )  # fmt: skip
        return info, found.project.name, serial

    info, project, serial = services.db.run_write(run)
    if serial is not None:
        services.changed(project, serial)
    return info


def cancel_session(services: Services, principal: Principal, public_id: str) -> SessionInfo:
    """Drop an open session and its files (their blobs go with the next gc)."""

    def run(session: Session) -> SessionInfo:
        found = _by_public_id(session, public_id)
        _project(session, principal, found.project.name)
        if found.state != "open":
            raise Conflict(f"upload session {found.name!r} is already {found.state}")
        return _close(
            session, found, "cancelled", principal.actor, utcnow(), token=principal.token_name
        )

    return services.db.run_write(run)


def expire_sessions(services: Services, now: datetime | None = None) -> list[str]:
    """Expire open sessions past their time; answers ``project/name`` of each."""
    now = now or utcnow()

    def run(session: Session) -> list[str]:
        stale = list(
            session.execute(
                select(UploadSession).where(
                    UploadSession.state == "open", UploadSession.expires_at <= now
                )
            ).scalars()
        )
        for found in stale:
            _close(session, found, "expired", audit.SYSTEM, now)
        return [f"{found.project.name}/{found.name}" for found in stale]

    return services.db.run_write(run)


def _preview_session(session: Session, public_id: str) -> UploadSession:
    found = _by_public_id(session, public_id)
    if found.state != "open" or found.expires_at <= utcnow():
        raise NotFound(f"upload session {public_id!r} is {found.state}: nothing to preview")
    return found


def preview_listing(
    services: Services, public_id: str, project_name: str, *, root: str
) -> ProjectListing | None:
    """The project page as it will read once the session is published: the label's live
    files, with the session's files added (replacing those of the same name)."""
    name = normalize_name(project_name)
    with services.db.read() as session:
        found = _preview_session(session, public_id)
        if found.project.name != name:
            return None
        live = listing.load_listing(session, name, found.label, root=root)
        if live is not None and not offers_files(live.status):
            return live  # quarantined (PEP 792): the session's files are not offered either
        pending = {
            f.filename: FileEntry(
                f.filename,
                f"{root}session/{public_id}/files/{f.sha256[:32]}/{f.filename}",
                f.sha256,
                f.size,
                f.uploaded_at,
                f.version,
                f.requires_python,
                f.metadata_sha256,
            )
            for f in found.files
        }
        files = {f.filename: f for f in (live.files if live else ())} | pending
        serial = found.project.serial
    return ProjectListing(name=name, serial=serial, files=tuple(files[k] for k in sorted(files)))


def preview_projects(services: Services, public_id: str) -> list[str]:
    with services.db.read() as session:
        found = _preview_session(session, public_id)
        return [found.project.name]


def pending_file(services: Services, public_id: str, filename: str) -> PendingFile:
    """A file of an open session, for its preview index."""
    with services.db.read() as session:
        found = _preview_session(session, public_id)
        project = found.project
        listing.check_offered(project.name, project.status, project.status_reason)
        row = session.execute(
            select(PendingFile).where(
                PendingFile.session_id == found.id, PendingFile.filename == filename
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(f"upload session {public_id!r} has no file {filename!r}")
        session.expunge(row)
        return row


def project_of(services: Services, public_id: str) -> str:
    with services.db.read() as session:
        return _by_public_id(session, public_id).project.name
