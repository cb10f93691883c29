"""Read-path queries: what a simple page lists, for a label, now or as of a past moment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from nightwheels.core.project_status import offers_files
from nightwheels.core.simple_pages import FileEntry, ProjectListing
from nightwheels.db.models import File, Project
from nightwheels.db.queries import LIVE
from nightwheels.errors import ProjectQuarantined


def file_path(sha256: str, filename: str) -> str:
    """The path of a file under the server root (no leading slash)."""
    return f"files/{sha256[:32]}/{filename}"


def _visible(label: str, as_of: datetime | None):  # type: ignore[no-untyped-def]
    if as_of is None:
        return and_(File.label == label, LIVE)
    return and_(
        File.label == label,
        File.uploaded_at <= as_of,
        or_(LIVE, File.removed_at > as_of),
    )


_LISTING_COLUMNS = (
    File.filename,
    File.sha256,
    File.size,
    File.uploaded_at,
    File.version,
    File.requires_python,
    File.metadata_sha256,
    File.yanked,
    File.yanked_reason,
)


def load_listing(
    session: Session,
    name: str,
    label: str,
    *,
    root: str,
    tracks: tuple[str, ...] = (),
    as_of: datetime | None = None,
) -> ProjectListing | None:
    """The files of one project; ``root`` is the relative URL from the page to the server root."""
    project = session.execute(
        select(Project.id, Project.serial, Project.status, Project.status_reason).where(
            Project.name == name
        )
    ).first()
    if project is None:
        return None
    if not offers_files(project.status):  # PEP 792: the page says why, and lists nothing
        return ProjectListing(
            name=name,
            serial=project.serial,
            files=(),
            tracks=tracks,
            status=project.status,
            status_reason=project.status_reason,
        )
    # Columns, not ORM objects: a third less time for a 200-file page, which other
    # requests wait for (the interpreter lock) while a changed page is rendered.
    rows = session.execute(
        select(*_LISTING_COLUMNS)
        .where(File.project_id == project.id, _visible(label, as_of))
        .order_by(File.filename)
    )
    files = tuple(
        FileEntry(
            row[0],
            root + file_path(row[1], row[0]),
            *row[1:],  # the remaining fields, in _LISTING_COLUMNS order
        )
        for row in rows
    )
    if not files:
        return None
    return ProjectListing(
        name=name,
        serial=project.serial,
        files=files,
        tracks=tracks,
        status=project.status,
        status_reason=project.status_reason,
    )


def _has_visible(label: str, as_of: datetime | None):  # type: ignore[no-untyped-def]
    """A probe per project on ``ix_files_project_label``: a scalar subquery with LIMIT 1,
    which PostgreSQL runs per project row (an IN or EXISTS it may turn into a scan of
    every file row), and SQLite too."""
    first = (
        select(File.id)
        .where(File.project_id == Project.id, _visible(label, as_of))
        .limit(1)
        .scalar_subquery()
    )
    return first.is_not(None)


def list_project_names(session: Session, label: str, as_of: datetime | None = None) -> list[str]:
    """Projects listing a file in ``label``: one index probe per project, whatever the
    number of files (the index is rendered from this at start and after many changes)."""
    rows = session.execute(
        select(Project.name).where(_has_visible(label, as_of)).order_by(Project.name)
    )
    return [name for (name,) in rows]


def listed_among(session: Session, label: str, names: list[str]) -> set[str]:
    """Which of ``names`` have a live file in ``label`` (an index probe per project)."""
    if not names:
        return set()
    found: set[str] = set()
    for start in range(0, len(names), 500):  # bounded IN lists
        rows = session.execute(
            select(Project.name).where(
                Project.name.in_(names[start : start + 500]), _has_visible(label, None)
            )
        )
        found.update(name for (name,) in rows)
    return found


def labels_of(session: Session, names: list[str] | None = None) -> set[str]:
    """The labels any file (live or within history) of these projects was uploaded to; of
    every project when ``names`` is ``None`` (a scan of one index, for a server's first
    label request)."""
    if names is None:
        return {label for (label,) in session.execute(select(File.label).distinct())}
    found: set[str] = set()
    for start in range(0, len(names), 500):  # bounded IN lists
        rows = session.execute(
            select(File.label)
            .distinct()
            .join(Project, File.project_id == Project.id)
            .where(Project.name.in_(names[start : start + 500]))
        )
        found.update(label for (label,) in rows)
    return found


def file_paths_of(session: Session, name: str, label: str) -> list[str]:
    """The paths (see :func:`file_path`) of every file of a project in a label, listed or
    within history, with their ``.metadata`` files."""
    rows = session.execute(
        select(File.sha256, File.filename, File.metadata_sha256)
        .join(Project, Project.id == File.project_id)
        .where(Project.name == name, File.label == label)
    )
    paths: list[str] = []
    for sha256, filename, metadata_sha256 in rows:
        paths.append(file_path(sha256, filename))
        if metadata_sha256:
            paths.append(file_path(sha256, filename) + ".metadata")
    return paths


@dataclass(frozen=True)
class FileLocation:
    """Where a file URL points, and what decides whether it is served: its project's
    status, as of the project's ``serial`` (a cache of this is valid while that holds)."""

    sha256: str
    size: int
    metadata_sha256: str | None
    project: str
    serial: int
    status: str
    status_reason: str | None


def find_file(session: Session, digest_prefix: str, filename: str) -> FileLocation | None:
    """A file by URL, including replaced and pruned files still within history."""
    # A range on the sha256 index (a LIKE prefix cannot use a btree index on PostgreSQL
    # outside the C collation, nor on SQLite, whose LIKE ignores case): one index probe
    # instead of a scan of every file row.
    digest_prefix = digest_prefix.lower()
    if not digest_prefix or any(c not in "0123456789abcdef" for c in digest_prefix):
        return None
    row = session.execute(
        select(
            File.sha256,
            File.size,
            File.metadata_sha256,
            Project.name,
            Project.serial,
            Project.status,
            Project.status_reason,
        )
        .join(Project, Project.id == File.project_id)
        .where(
            File.sha256 >= digest_prefix,
            File.sha256 < digest_prefix + "g",
            File.sha256.startswith(digest_prefix, autoescape=True),
            File.filename == filename,
        )
        .limit(1)
    ).first()
    return FileLocation(*row) if row is not None else None


def check_offered(project: str, status: str, reason: str | None) -> None:
    """PEP 792: a quarantined project offers no file for download, by a URL someone kept
    either (its pages list none)."""
    if not offers_files(status):
        why = f" ({reason})" if reason else ""
        raise ProjectQuarantined(
            f"project {project!r} is {status}{why}: its files are not offered for download"
        )
