"""Retention settings per project (overrides of the server's), pins, and storage usage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.names import normalize_name
from nightwheels.core.retention import Policy
from nightwheels.core.versions import normalize_version
from nightwheels.db.models import File, Project
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import InvalidRequest, NotFound
from nightwheels.services import audit, serials
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services

# Fields a project may override; ``None`` as a new value means "back to the server default".
OVERRIDES = ("retention_keep", "retention_days", "retention_exempt", "quota_bytes")


def server_policy(settings: Settings) -> Policy:
    return Policy(
        keep=settings.retention_keep,
        days=settings.retention_days,
        tag_days=settings.retention_tag_days,
        max_share=settings.prune_max_share,
    )


def project_policy(
    settings: Settings, keep: int | None, days: int | None, exempt: bool | None
) -> Policy:
    """The effective policy of a project: its overrides over the server's settings."""
    base = server_policy(settings)
    days = days if days is not None else base.days
    return Policy(
        keep=keep if keep is not None else base.keep,
        days=days,
        tag_days=max(base.tag_days, days),
        max_share=base.max_share,
        exempt=bool(exempt),
    )


@dataclass(frozen=True)
class Usage:
    project: str
    live_files: int
    live_bytes: int
    history_files: int
    history_bytes: int
    quota_bytes: int | None

    @property
    def quota_share(self) -> float | None:
        return self.live_bytes / self.quota_bytes if self.quota_bytes else None


@dataclass(frozen=True)
class ProjectRetention:
    project: str
    keep: int | None
    days: int | None
    exempt: bool
    quota_bytes: int | None
    repository_url: str | None
    effective: Policy


def _project(session: Session, name: str) -> Project:
    normalized = normalize_name(name)
    project = project_by_name(session, normalized)
    if project is None:
        raise NotFound(f"no project named {normalized!r}")
    return project


def _describe(settings: Settings, project: Project) -> ProjectRetention:
    return ProjectRetention(
        project=project.name,
        keep=project.retention_keep,
        days=project.retention_days,
        exempt=project.retention_exempt,
        quota_bytes=project.quota_bytes,
        repository_url=project.repository_url,
        effective=project_policy(
            settings, project.retention_keep, project.retention_days, project.retention_exempt
        ),
    )


def get_retention(services: Services, name: str) -> ProjectRetention:
    with services.db.read() as session:
        return _describe(services.settings, _project(session, name))


def _check(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "retention_exempt":
        return bool(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{field} must be a whole number")
    if field == "quota_bytes" and value < 0:
        raise InvalidRequest("a quota cannot be negative")
    if field in ("retention_keep", "retention_days") and value < 1:
        if field == "retention_keep":
            raise InvalidRequest("the number of versions to keep must be at least 1")
        # 0 days would prune all but each label's newest version at once. To see what a
        # policy does as time passes, rehearse on a copy with past upload times instead.
        raise InvalidRequest(
            "the number of days must be at least 1; to rehearse what a prune removes as "
            "files age, publish them with past times on a copy of the index: "
            "nightwheels admin publish --uploaded-at 20d --owner USER FILE..."
        )
    return value


def set_retention(
    services: Services,
    actor: Actor,
    name: str,
    changes: dict[str, Any],
    *,
    repository_url: str | None = None,
) -> ProjectRetention:
    """Change a project's overrides (``None`` resets one to the server default)."""
    unknown = set(changes) - set(OVERRIDES)
    if unknown:
        raise InvalidRequest(f"unknown retention setting(s): {', '.join(sorted(unknown))}")
    checked = {field: _check(field, value) for field, value in changes.items()}
    if (
        repository_url is not None
        and repository_url
        and not repository_url.startswith(("https://", "http://"))
    ):
        raise InvalidRequest("the repository must be an http(s) URL")

    def run(session: Session, changes: serials.Changes) -> ProjectRetention:
        project = _project(session, name)
        before = {field: getattr(project, field) for field in checked}
        for field, value in checked.items():
            if field == "retention_exempt" and value is None:
                value = False
            setattr(project, field, value)
        if repository_url is not None:
            before["repository_url"] = project.repository_url
            project.repository_url = repository_url or None
        after = {field: getattr(project, field) for field in before}
        if after != before:
            audit.record(
                session,
                actor,
                "project.retention",
                project=project.name,
                before=before,
                after=after,
            )
            changes.bump(project)
        return _describe(services.settings, project)

    return serials.write(services, run)


def set_pinned(
    services: Services,
    actor: Actor,
    name: str,
    *,
    version: str | None = None,
    filename: str | None = None,
    pinned: bool = True,
) -> list[str]:
    """Pin (or unpin) the live files of a version, or one file: prune never removes them."""
    if not version and not filename:
        raise InvalidRequest("name a version or a file to pin")

    def run(session: Session, changes: serials.Changes) -> list[str]:
        project = _project(session, name)
        query = select(File).where(File.project_id == project.id, LIVE)
        if version:
            query = query.where(File.version == normalize_version(version))
        if filename:
            query = query.where(File.filename == filename)
        files = list(session.execute(query).scalars())
        if not files:
            raise NotFound(f"project {project.name!r} has no file matching {filename or version}")
        changed = [f for f in files if f.pinned != pinned]
        for f in changed:
            f.pinned = pinned
            audit.record(
                session,
                actor,
                "file.pin" if pinned else "file.unpin",
                project=project.name,
                target=f.filename,
                label=f.label,
            )
        if changed:
            changes.bump(project)
        return sorted({f.filename for f in files})

    return serials.write(services, run)


def usage(session: Session, name: str | None = None) -> list[Usage]:
    """Bytes per project: live files (what the quota counts) and history (removed, kept)."""
    query = select(
        Project.name,
        Project.live_files,
        Project.live_bytes,
        Project.history_files,
        Project.history_bytes,
        Project.quota_bytes,
    ).order_by(Project.name)  # the aggregates kept by services/stats.py: no file rows read
    if name is not None:
        query = query.where(Project.name == normalize_name(name))
    rows = [
        Usage(name, int(lf), int(lb), int(hf), int(hb), quota)  # PostgreSQL sums are Decimal
        for name, lf, lb, hf, hb, quota in session.execute(query)
    ]
    if name is not None and not rows:
        raise NotFound(f"no project named {normalize_name(name)!r}")
    return rows
