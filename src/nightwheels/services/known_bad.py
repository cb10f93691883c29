"""Known-bad builds: an upstream's admin says "this nightly is broken, here is the fix".

More than yanking: the files stay installable (a bisect needs them), and the matrix, the
per-build verdicts and downstream tracking issues show "known upstream regression: <link>",
so that downstream maintainers do not dig into something already known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.versions import normalize_version
from nightwheels.db.models import File, KnownBadBuild, Project
from nightwheels.db.queries import project_by_name
from nightwheels.errors import InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.auth import Principal, require_project_admin

__all__ = [
    "KnownBad",
    "Mark",
    "known_bad",
    "known_bad_by_sha256",
    "mark_known_bad",
    "unmark_known_bad",
]

MAX_REASON = 2000


@dataclass(frozen=True)
class KnownBad:
    reason: str
    link: str | None


@dataclass(frozen=True)
class Mark:
    project: str
    filename: str
    version: str
    sha256: str
    reason: str
    link: str | None
    marked_by: str
    marked_at: datetime


def _mark(project: str, row: KnownBadBuild) -> Mark:
    return Mark(
        project, row.filename, row.version, row.sha256, row.reason, row.link,
        row.marked_by, row.marked_at,
    )  # fmt: skip


def _project(session: Session, name: str) -> Project:
    found = project_by_name(session, normalize_name(name))
    if found is None:
        raise NotFound(f"no project named {name!r}")
    return found


def _files(
    session: Session, project: Project, version: str | None, sha256: list[str]
) -> list[File]:
    query = select(File).where(File.project_id == project.id)
    if sha256:
        query = query.where(File.sha256.in_([s.lower() for s in sha256]))
    elif version:
        query = query.where(File.version == normalize_version(version))
    else:
        raise InvalidRequest("name the build: a version, or the sha256 of its files")
    files = {f.sha256: f for f in session.execute(query).scalars()}
    if not files:
        raise NotFound(f"project {project.name!r} has no such file (live or in history)")
    return list(files.values())


def _check_link(link: str | None) -> str | None:
    if not link:
        return None
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(link) > 500:
        raise InvalidRequest("the link must be an http(s) URL of at most 500 characters")
    return link


def mark_known_bad(
    session: Session,
    principal: Principal,
    project_name: str,
    *,
    reason: str,
    version: str | None = None,
    sha256: list[str] | None = None,
    link: str | None = None,
) -> list[Mark]:
    """Mark a build (a version's files, or files by sha256) as a known regression."""
    project = _project(session, project_name)
    require_project_admin(session, principal, project, "mark builds as known bad")
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidRequest(f"give a reason of 1-{MAX_REASON} characters")
    link = _check_link(link)
    marks = []
    for file in _files(session, project, version, sha256 or []):
        row = session.execute(
            select(KnownBadBuild).where(
                KnownBadBuild.project_id == project.id, KnownBadBuild.sha256 == file.sha256
            )
        ).scalar_one_or_none() or KnownBadBuild(project_id=project.id, sha256=file.sha256)
        row.filename, row.version = file.filename, file.version
        row.reason, row.link, row.marked_by = reason, link, principal.user_name
        session.add(row)
        session.flush()
        marks.append(_mark(project.name, row))
        audit.record(
            session, principal.actor, "build.known_bad", project=project.name,
            target=file.filename, sha256=file.sha256, reason=reason, link=link,
        )  # fmt: skip
    return marks


def unmark_known_bad(
    session: Session,
    principal: Principal,
    project_name: str,
    *,
    version: str | None = None,
    sha256: list[str] | None = None,
) -> list[str]:
    project = _project(session, project_name)
    require_project_admin(session, principal, project, "unmark known-bad builds")
    digests = {f.sha256 for f in _files(session, project, version, sha256 or [])}
    rows = session.execute(
        select(KnownBadBuild).where(
            KnownBadBuild.project_id == project.id, KnownBadBuild.sha256.in_(sorted(digests))
        )
    ).scalars()
    removed = []
    for row in rows:
        session.delete(row)
        removed.append(row.filename)
        audit.record(
            session, principal.actor, "build.known_good", project=project.name,
            target=row.filename, sha256=row.sha256,
        )  # fmt: skip
    return sorted(removed)


def known_bad_by_sha256(session: Session, digests: set[str]) -> dict[str, KnownBad]:
    """The marks of these files (by sha256): one query, for the matrix, builds and alerts."""
    if not digests:
        return {}
    rows = session.execute(
        select(KnownBadBuild.sha256, KnownBadBuild.reason, KnownBadBuild.link).where(
            KnownBadBuild.sha256.in_(sorted(digests))
        )
    )
    return {sha: KnownBad(reason, link) for sha, reason, link in rows}


def known_bad(session: Session, project_name: str) -> list[Mark]:
    """A project's known-bad builds (public: the point is that downstreams see them)."""
    project = _project(session, project_name)
    rows = session.execute(
        select(KnownBadBuild)
        .where(KnownBadBuild.project_id == project.id)
        .order_by(KnownBadBuild.marked_at.desc())
    ).scalars()
    return [_mark(project.name, row) for row in rows]
