"""Yanking (PEP 592): a yanked file stays installable by exact pin, hidden from ranges."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.versions import normalize_version
from nightwheels.db.models import File, Project
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import NotFound
from nightwheels.services import audit, serials
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal, require_upload
from nightwheels.services.context import Services


def _authorise(session: Session, principal: Principal | None, project: Project) -> None:
    """Whoever may upload to a project may yank its files; ``None`` is the local admin CLI."""
    if principal is not None:
        require_upload(session, principal, project.name)


def set_yanked(
    services: Services,
    actor: Actor,
    project_name: str,
    *,
    version: str | None = None,
    filename: str | None = None,
    yanked: bool = True,
    reason: str | None = None,
    principal: Principal | None = None,
) -> list[str]:
    """Yank (or un-yank) every live file of a version, or one file; return their names."""
    name = normalize_name(project_name)

    def run(session: Session, changes: serials.Changes) -> list[str]:
        project = project_by_name(session, name)
        if project is None:
            raise NotFound(f"no project named {name!r}")
        _authorise(session, principal, project)
        query = select(File).where(File.project_id == project.id, LIVE)
        if filename:
            query = query.where(File.filename == filename)
        if version:
            query = query.where(File.version == normalize_version(version))
        files = list(session.execute(query).scalars())
        if not files:
            what = filename or f"version {version}"
            raise NotFound(f"project {name!r} has no file matching {what}")
        changed = [f for f in files if f.yanked != yanked or (yanked and f.yanked_reason != reason)]
        for f in changed:
            f.yanked = yanked
            f.yanked_reason = reason if yanked else None
            audit.record(
                session,
                actor,
                "file.yank" if yanked else "file.unyank",
                project=name,
                target=f.filename,
                reason=reason,
            )
        if changed:
            changes.bump(project)
        return sorted({f.filename for f in files})

    return serials.write(services, run)
