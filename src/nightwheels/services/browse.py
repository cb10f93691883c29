"""Read functions for the web UI: what the home, project, search and freshness pages show.

Each returns plain dataclasses (no ORM objects escape a session), so templates only format.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from sqlalchemy import func, null, select
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.expiry import Freshness, FreshnessPolicy, assess
from nightwheels.core.names import normalize_name
from nightwheels.core.project_status import offers_files
from nightwheels.core.tags import TagDescription, describe_filename
from nightwheels.db.models import File, Project, ProjectRole, User
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import NotFound
from nightwheels.services import compat, members, stats
from nightwheels.services.listing import file_path

RECENT_UPLOADS = 15
SEARCH_LIMIT = 50
CHART_DAYS = 60


def freshness_policy(settings: Settings, project: Project | None = None) -> FreshnessPolicy:
    """The retention and warning thresholds for a project: the one place the web UI reads them.

    Server-wide values come from the retention settings when present (``retention_keep``,
    ``retention_days``, ``freshness_warn_days``, ``freshness_final_days``), else the defaults
    of :class:`FreshnessPolicy`; a project's own overrides win.
    """
    base = FreshnessPolicy()
    keep = getattr(settings, "retention_keep", base.keep)
    days = getattr(settings, "retention_days", base.days)
    warn = getattr(settings, "freshness_warn_days", base.warn_days)
    final = getattr(settings, "freshness_final_days", base.final_days)
    exempt = False
    if project is not None:
        keep = project.retention_keep or keep
        days = project.retention_days or days
        exempt = bool(project.retention_exempt)
    return FreshnessPolicy(keep=keep, days=days, warn_days=warn, final_days=final, exempt=exempt)


# -- home and search ------------------------------------------------------------------


@dataclass(frozen=True)
class RecentUpload:
    project: str
    display_name: str
    version: str
    filename: str
    label: str
    uploaded_at: datetime
    size: int
    tags: TagDescription


@dataclass(frozen=True)
class HomeView:
    projects: int
    files: int
    total_size: int
    recent: list[RecentUpload]


def home(session: Session) -> HomeView:
    counts = stats.totals(session)
    rows = session.execute(
        select(
            Project.name,
            Project.display_name,
            File.version,
            File.filename,
            File.label,
            File.uploaded_at,
            File.size,
        )
        .join(Project, Project.id == File.project_id)
        # Newest first along the upload-time index, stopping after 15 live rows. The
        # condition is an expression so that no index serves it: SQLite otherwise picks the
        # removed_at index and sorts every live file.
        .where(func.coalesce(File.removed_at, null()).is_(None))
        .order_by(File.uploaded_at.desc(), File.id.desc())
        .limit(RECENT_UPLOADS)
    ).all()
    recent = [
        RecentUpload(n, d, v, f, lbl, t, s, describe_filename(f)) for n, d, v, f, lbl, t, s in rows
    ]
    return HomeView(
        projects=counts.projects, files=counts.files, total_size=counts.bytes, recent=recent
    )


@dataclass(frozen=True)
class ProjectHit:
    name: str
    display_name: str
    files: int
    last_upload: datetime | None


def search(session: Session, query: str, limit: int = SEARCH_LIMIT) -> list[ProjectHit]:
    """Projects whose name contains the query (after PEP 503 normalisation), best first."""
    text = query.strip()[:200]
    if not text:
        return []
    needle = canonicalize_name(text)  # the PEP 503 form, without refusing partial names
    rows = session.execute(
        select(Project.name, Project.display_name, Project.live_files, Project.last_live_upload_at)
        .where(Project.name.contains(needle, autoescape=True))
        .order_by(Project.name)
        .limit(limit * 4)
    ).all()
    hits = [ProjectHit(n, d, c, t) for n, d, c, t in rows]
    hits.sort(key=lambda h: (h.name != needle, not h.name.startswith(needle), h.name))
    return hits[:limit]


# -- project page -----------------------------------------------------------------------


@dataclass(frozen=True)
class FileView:
    filename: str
    label: str
    size: int
    sha256: str
    path: str  # under the server root, no leading slash
    uploaded_at: datetime
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    uploader: str | None
    tags: TagDescription


@dataclass(frozen=True)
class VersionView:
    version: str
    latest_upload: datetime
    files: list[FileView]

    @property
    def yanked(self) -> bool:
        return all(f.yanked for f in self.files)

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class MemberView:
    name: str
    organisation: str | None
    role: str


@dataclass(frozen=True)
class ProjectView:
    name: str
    display_name: str
    repository_url: str | None
    created_at: datetime
    versions: list[VersionView]
    members: list[MemberView]
    member_warnings: list[str]  # SPEC 4: two admins, from more than one organisation
    policy: FreshnessPolicy
    freshness: Freshness
    # Downstream projects' latest test results with this project's nightlies (may be empty).
    compat: list[compat.UpstreamRow]
    status: str = "active"  # PEP 792 (core/project_status.py)
    status_reason: str | None = None

    @property
    def compat_failing(self) -> int:
        return sum(1 for r in self.compat if r.outcome != "passed")

    @property
    def files(self) -> int:
        return sum(len(v.files) for v in self.versions)

    @property
    def total_size(self) -> int:
        return sum(v.size for v in self.versions)

    @property
    def labels(self) -> list[str]:
        return sorted({f.label for v in self.versions for f in v.files})


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def project(session: Session, settings: Settings, name: str, now: datetime) -> ProjectView | None:
    """Everything the project page shows, or ``None`` if there is no such project."""
    row = project_by_name(session, normalize_name(name))
    if row is None:
        return None
    files = session.execute(
        select(
            File.version,
            File.filename,
            File.label,
            File.size,
            File.sha256,
            File.uploaded_at,
            File.requires_python,
            File.yanked,
            File.yanked_reason,
            User.name,
        )
        .outerjoin(User, User.id == File.uploader_id)
        .where(File.project_id == row.id, LIVE)
    ).all()
    if not offers_files(row.status):  # quarantined: no file is offered, here either
        files = []
    by_version: dict[str, list[FileView]] = defaultdict(list)
    for version, filename, label, size, sha256, at, requires, yanked, reason, uploader in files:
        by_version[version].append(
            FileView(
                filename=filename,
                label=label,
                size=size,
                sha256=sha256,
                path=file_path(sha256, filename),
                uploaded_at=at,
                requires_python=requires,
                yanked=yanked,
                yanked_reason=reason,
                uploader=uploader,
                tags=describe_filename(filename),
            )
        )
    versions = [
        VersionView(
            version=v,
            latest_upload=max(f.uploaded_at for f in fs),
            files=sorted(fs, key=lambda f: (f.label != "main", f.label, f.tags.sort_key)),
        )
        for v, fs in by_version.items()
    ]
    versions.sort(key=lambda v: (v.latest_upload, _version_key(v.version)), reverse=True)
    membership = members.members(session, row)
    policy = freshness_policy(settings, row)
    last = versions[0].latest_upload if versions else None
    return ProjectView(
        name=row.name,
        display_name=row.display_name,
        repository_url=row.repository_url,
        created_at=row.created_at,
        versions=versions,
        members=[MemberView(m.user, m.organisation, m.role) for m in membership.members],
        member_warnings=membership.warnings,
        policy=policy,
        freshness=assess(last, now, policy),
        compat=compat.upstream_status(session, row.name),
        status=row.status,
        status_reason=row.status_reason,
    )


# -- freshness dashboard ----------------------------------------------------------------


@dataclass(frozen=True)
class DashboardRow:
    name: str
    display_name: str
    versions: int
    files: int
    freshness: Freshness


DASHBOARD_PAGE = 100


@dataclass(frozen=True)
class DashboardView:
    rows: list[DashboardRow]  # one page of projects, oldest last upload first
    uploads_per_day: list[tuple[date, int]]  # oldest first, CHART_DAYS entries
    policy: FreshnessPolicy
    stale: int  # stale projects in the whole index
    projects: int  # projects in the whole index
    page: int = 1  # 1-based
    per_page: int = DASHBOARD_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.projects // self.per_page))


def uploads_per_day(
    session: Session, now: datetime, days: int = CHART_DAYS
) -> list[tuple[date, int]]:
    """Files uploaded per UTC day over the last ``days`` days, including since-replaced ones."""
    return stats.uploads_per_day(
        session, now.astimezone(UTC).date() - timedelta(days=days - 1), days
    )


def _stale_count(session: Session, settings: Settings, now: datetime) -> int:
    """Projects stale now: only those not uploaded to for the shortest threshold are read."""
    base = freshness_policy(settings)
    overrides = session.execute(
        select(func.min(Project.retention_days)).where(Project.retention_days.is_not(None))
    ).scalar()
    shortest = min(base.warn_days, base.final_days, base.days, overrides or base.days)
    candidates = session.execute(
        select(Project).where(
            Project.last_live_upload_at <= now - timedelta(days=max(0, shortest)),
            Project.retention_exempt.is_(False),
        )
    ).scalars()
    return sum(
        1
        for p in candidates
        if assess(p.last_live_upload_at, now, freshness_policy(settings, p)).stale
    )


def dashboard(
    session: Session,
    settings: Settings,
    now: datetime,
    page: int = 1,
    per_page: int = DASHBOARD_PAGE,
) -> DashboardView:
    """Projects by last live upload, oldest first (never-uploaded ones at the top), a page
    at a time: its cost follows the page, not the size of the index."""
    projects = stats.totals(session).projects
    pages = max(1, -(-projects // per_page))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(Project)
        .order_by(Project.last_live_upload_at.asc().nulls_first(), Project.name)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).scalars()
    result = [
        DashboardRow(
            name=p.name,
            display_name=p.display_name,
            versions=p.live_versions,
            files=p.live_files,
            freshness=assess(p.last_live_upload_at, now, freshness_policy(settings, p)),
        )
        for p in rows
    ]
    return DashboardView(
        result,
        uploads_per_day(session, now),
        freshness_policy(settings),
        stale=_stale_count(session, settings, now),
        projects=projects,
        page=page,
        per_page=per_page,
    )


# -- a signed-in user's projects ----------------------------------------------------------


@dataclass(frozen=True)
class UserProject:
    name: str
    display_name: str
    role: str
    files: int
    freshness: Freshness


def user_projects(
    session: Session, settings: Settings, user_id: int, now: datetime
) -> list[UserProject]:
    """The projects a user has a role on, by name."""
    rows = session.execute(
        select(Project, ProjectRole.role)
        .join(ProjectRole, ProjectRole.project_id == Project.id)
        .where(ProjectRole.user_id == user_id)
        .order_by(Project.name)
    ).all()
    return [
        UserProject(
            p.name,
            p.display_name,
            role,
            p.live_files,
            assess(p.last_live_upload_at, now, freshness_policy(settings, p)),
        )
        for p, role in rows
    ]


# -- the project list (API) -------------------------------------------------------------

PROJECTS_PAGE = 100  # the API's default page
PROJECTS_PAGE_MAX = 1000  # and its largest


@dataclass(frozen=True)
class ProjectSummary:
    name: str
    display_name: str
    files: int
    last_upload: datetime | None  # of a live file


def project_list(
    session: Session, *, after: str | None = None, limit: int = PROJECTS_PAGE
) -> tuple[list[ProjectSummary], bool]:
    """Projects by name after ``after`` (a cursor: the last name of the previous page), and
    whether more follow. Reads the aggregates: a page costs its own rows only."""
    query = select(
        Project.name, Project.display_name, Project.live_files, Project.last_live_upload_at
    ).order_by(Project.name)
    if after:
        query = query.where(Project.name > after)
    rows = session.execute(query.limit(limit + 1)).all()
    return [ProjectSummary(*row) for row in rows[:limit]], len(rows) > limit


@dataclass(frozen=True)
class ProjectFiles:
    """A project and its live files, newest first (``GET /api/v1/projects/<name>``)."""

    name: str
    display_name: str
    serial: int
    files: list[File]  # read inside the caller's session


def project_files(session: Session, name: str) -> ProjectFiles:
    normalized = normalize_name(name)
    project = project_by_name(session, normalized)
    if project is None:
        raise NotFound(f"no project named {normalized!r}")
    files = session.execute(
        select(File)
        .where(File.project_id == project.id, LIVE)
        .order_by(File.uploaded_at.desc(), File.filename)
    ).scalars()
    return ProjectFiles(project.name, project.display_name, project.serial, list(files))
