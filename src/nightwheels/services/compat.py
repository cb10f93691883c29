"""The compatibility record: which downstream projects pass or fail with which nightlies.

Downstream CI posts the result of ``nightwheels test`` (``nightwheels report --server``).
Only nightlies that are files of this index (matched by sha256, including replaced and
pruned files still in history) are recorded: a report cannot put arbitrary names on an
upstream project's page. A downstream is a project of this index, and only its members
(through a ``report`` token) or its trusted publisher report for it (issue 14, item 6). The
links shown with a result are the downstream's own: its repository URL on this index, and
a run URL only when it lies inside that repository.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from nightwheels.core.names import normalize_name
from nightwheels.core.permissions import Permission, token_allows
from nightwheels.db.models import CompatNightly, CompatRun, File, Project, TrustedPublisher
from nightwheels.db.queries import project_by_name
from nightwheels.errors import Forbidden, InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.auth import Principal, user_role

# What nightwheels test reports: passed, failed (culprits name the nightlies bisection
# blamed), could-not-run (pytest or the tool stopped first), install-error.
OUTCOMES = frozenset({"passed", "failed", "could-not-run", "install-error"})
MAX_NIGHTLIES = 500
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class NightlyIn:
    project: str
    version: str
    filename: str
    sha256: str
    uploaded_at: datetime | None = None


@dataclass(frozen=True)
class ResultIn:
    downstream: str
    outcome: str
    python: str
    platform: str
    tested_at: datetime
    nightlies: list[NightlyIn]
    culprits: list[str] = field(default_factory=list)
    repository: str | None = None
    run_url: str | None = None
    commit: str | None = None
    tests_passed: int = 0
    tests_failed: int = 0
    failures: list[str] = field(default_factory=list)  # failing test ids
    # Files the bisect named as the first bad build of a culprit (sha256), each a file of
    # this index; they may be older than the nightlies the run tested.
    first_bad: list[NightlyIn] = field(default_factory=list)


MAX_FAILURES = 200


@dataclass(frozen=True)
class Recorded:
    run_id: int
    recorded: list[str]
    ignored: list[str]


def _check(result: ResultIn) -> None:
    if result.outcome not in OUTCOMES:
        raise InvalidRequest(f"outcome must be one of {', '.join(sorted(OUTCOMES))}")
    if not result.nightlies:
        raise InvalidRequest("the result names no nightly")
    if len(result.nightlies) > MAX_NIGHTLIES:
        raise InvalidRequest(f"at most {MAX_NIGHTLIES} nightlies per result")
    for n in result.nightlies:
        if len(n.sha256) != 64 or not set(n.sha256.lower()) <= _HEX:
            raise InvalidRequest(f"{n.filename!r}: sha256 must be 64 hexadecimal digits")
    if result.run_url and not result.run_url.startswith(("https://", "http://")):
        raise InvalidRequest("run_url must be an http(s) URL")
    if result.tested_at.tzinfo is None:
        raise InvalidRequest("tested_at must carry a time zone")


def require_reporter(session: Session, principal: Principal, downstream: str) -> Project:
    """Who may report for ``downstream``: its members (with a ``report`` token scoped to it, or
    unscoped) and its trusted publisher. Checked on every report, so removal is immediate."""
    project = project_by_name(session, downstream)
    if principal.publisher_id is not None:
        # Its token's scope: the projects whose registrations accepted the OIDC token
        # (one workflow may be registered on several); a removed registration leaves it.
        publisher = session.get(TrustedPublisher, principal.publisher_id)
        if project is None or publisher is None or project.name not in (principal.projects or ()):
            raise Forbidden(
                f"{principal.user_name} is not a trusted publisher of {downstream!r}: it may "
                "report results only for its own project"
            )
        return project
    if not token_allows(principal.permissions, principal.projects, downstream, Permission.REPORT):
        raise Forbidden(
            f"token {principal.token_name!r} may not report results for {downstream!r}: "
            "it needs the 'report' permission for that project"
        )
    if project is None:
        raise Forbidden(
            f"{downstream!r} is not a project on this index: a downstream reports through a "
            "project of its own (nightwheels access request), by its members"
        )
    if user_role(session, principal.user_id, project.id) is None:
        raise Forbidden(
            f"{principal.user_name!r} is not a member of {downstream!r}: only its members (or "
            "its trusted publisher) may report its results"
        )
    return project


def _base(url: str | None) -> str | None:
    """An http(s) repository URL without a trailing slash or ``.git``, else ``None``."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    path = parts.path.rstrip("/").removesuffix(".git")
    return f"{parts.scheme}://{parts.netloc.lower()}{path}"


def own_link(url: str | None, repository_url: str | None) -> str | None:
    """``url`` when it is a page of the downstream's own repository (same scheme and host,
    under its path), else ``None``: a report cannot link an upstream's page elsewhere."""
    base = _base(repository_url)
    if not url or base is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    candidate = f"{parts.scheme}://{parts.netloc.lower()}{parts.path}"
    return url if candidate == base or candidate.startswith(base + "/") else None


def record_result(session: Session, principal: Principal, result: ResultIn) -> Recorded:
    downstream = normalize_name(result.downstream)
    require_reporter(session, principal, downstream)
    _check(result)
    culprits = {normalize_name(c) for c in result.culprits}
    run = CompatRun(
        downstream=downstream,
        repository=(result.repository or None) and result.repository[:300],
        outcome=result.outcome,
        python=result.python[:40],
        platform=result.platform[:200],
        run_url=result.run_url[:500] if result.run_url else None,
        commit=result.commit[:64] if result.commit else None,
        tests_passed=max(0, result.tests_passed),
        tests_failed=max(0, result.tests_failed),
        culprits=sorted(culprits),
        tested_at=result.tested_at,
        reporter=principal.user_name,
        failures=sorted({f[:500] for f in result.failures})[:MAX_FAILURES],
    )
    recorded: list[str] = []
    ignored: list[str] = []
    for n in result.nightlies:
        project = normalize_name(n.project)
        file = session.execute(
            select(File)
            .join(Project, Project.id == File.project_id)
            .where(
                Project.name == project,
                File.sha256 == n.sha256.lower(),
                File.filename == n.filename,
            )
            .limit(1)
        ).scalar_one_or_none()
        if file is None:
            ignored.append(n.filename)
            continue
        run.nightlies.append(_nightly(project, file, culprit=project in culprits))
        recorded.append(file.filename)
    _record_first_bad(session, run, result.first_bad, culprits)
    if not recorded:
        raise InvalidRequest(
            "none of the reported nightlies is a file of this index (matched by project, "
            "filename and sha256): nothing recorded"
        )
    session.add(run)
    session.flush()
    audit.record(
        session,
        principal.actor,
        "compat.report",
        project=downstream,
        target=result.outcome,
        nightlies=recorded,
        ignored=ignored,
        culprits=sorted(culprits),
    )
    return Recorded(run.id, recorded, ignored)


def _nightly(project: str, file: File, *, culprit: bool, first_bad: bool = False) -> CompatNightly:
    """A tested nightly of the record: the index's file, as it was when tested."""
    return CompatNightly(
        project=project,
        version=file.version,
        filename=file.filename,
        sha256=file.sha256,
        uploaded_at=file.uploaded_at,
        file_id=file.id,
        culprit=culprit,
        first_bad=first_bad,
    )


def _record_first_bad(
    session: Session, run: CompatRun, first_bad: list[NightlyIn], culprits: set[str]
) -> None:
    """Mark the first bad builds the bisect named: a culprit's file of this index."""
    by_sha = {n.sha256: n for n in run.nightlies}
    for named in first_bad[:50]:
        project = normalize_name(named.project)
        if project not in culprits:
            continue  # only a named culprit has a first bad build
        sha256 = named.sha256.lower()
        if sha256 in by_sha:
            by_sha[sha256].first_bad = True
            continue
        file = session.execute(
            select(File)
            .join(Project, Project.id == File.project_id)
            .where(Project.name == project, File.sha256 == sha256)
            .limit(1)
        ).scalar_one_or_none()
        if file is None:
            continue
        run.nightlies.append(_nightly(project, file, culprit=True, first_bad=True))


@dataclass(frozen=True)
class UpstreamRow:
    downstream: str
    repository: str | None  # as reported (text, never a link)
    outcome: str
    culprit: bool
    version: str
    filename: str
    sha256: str
    uploaded_at: datetime | None
    python: str
    platform: str
    tested_at: datetime
    run_url: str | None  # only inside the downstream's own repository
    repository_url: str | None = None  # the downstream's own, from this index


def _tested_rows(rows):  # type: ignore[no-untyped-def]
    """One row per run: the nightly the run installed. A first-bad-build row that the bisect
    added next to it (an older build, not installed by this run) is left out."""
    chosen: dict[int, tuple] = {}  # type: ignore[type-arg]
    for row in rows:
        run, nightly = row[0], row[1]
        current = chosen.get(run.id)
        if current is None or (current[1].first_bad and not nightly.first_bad):
            chosen[run.id] = row
    return [row for row in rows if chosen.get(row[0].id) is row]


def upstream_status(session: Session, upstream: str) -> list[UpstreamRow]:
    """For each downstream (and Python, platform): its latest result with ``upstream``'s nightly."""
    name = normalize_name(upstream)
    latest = (
        select(func.max(CompatRun.id).label("run_id"))
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .where(CompatNightly.project == name)
        .group_by(CompatRun.downstream, CompatRun.python, CompatRun.platform)
        .subquery()
    )
    rows = session.execute(
        select(CompatRun, CompatNightly, Project.repository_url)
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .outerjoin(Project, Project.name == CompatRun.downstream)
        .where(CompatRun.id.in_(select(latest.c.run_id)), CompatNightly.project == name)
        .order_by(CompatRun.downstream, CompatRun.python, CompatRun.platform)
    ).all()
    rows = _tested_rows(rows)
    return [
        UpstreamRow(
            downstream=run.downstream,
            repository=run.repository,
            outcome=run.outcome,
            culprit=nightly.culprit,
            version=nightly.version,
            filename=nightly.filename,
            sha256=nightly.sha256,
            uploaded_at=nightly.uploaded_at,
            python=run.python,
            platform=run.platform,
            tested_at=run.tested_at,
            run_url=own_link(run.run_url, repository_url),
            repository_url=_base(repository_url),
        )
        for run, nightly, repository_url in rows
    ]


@dataclass(frozen=True)
class HistoryNightly:
    project: str
    version: str
    filename: str
    sha256: str
    uploaded_at: datetime | None
    culprit: bool
    first_bad: bool  # the bisect's first bad build (it may be an older file than the one tested)


@dataclass(frozen=True)
class HistoryRun:
    """One reported run of a downstream, as shown."""

    id: int
    outcome: str
    python: str
    platform: str
    tested_at: datetime
    reported_at: datetime
    run_url: str | None  # only inside the downstream's own repository, as everywhere
    commit: str | None
    tests_passed: int
    tests_failed: int
    culprits: list[str]
    nightlies: list[HistoryNightly]


def downstream_history(session: Session, downstream: str, limit: int = 50) -> list[HistoryRun]:
    name = normalize_name(downstream)
    runs = list(
        session.execute(
            select(CompatRun)
            .where(CompatRun.downstream == name)
            .options(selectinload(CompatRun.nightlies))
            .order_by(CompatRun.id.desc())
            .limit(max(1, min(limit, 500)))
        ).scalars()
    )
    if not runs:
        raise NotFound(f"no results reported for {name!r}")
    repository_url = session.execute(
        select(Project.repository_url).where(Project.name == name)
    ).scalar_one_or_none()
    return [
        HistoryRun(
            id=run.id,
            outcome=run.outcome,
            python=run.python,
            platform=run.platform,
            tested_at=run.tested_at,
            reported_at=run.reported_at,
            run_url=own_link(run.run_url, repository_url),
            commit=run.commit,
            tests_passed=run.tests_passed,
            tests_failed=run.tests_failed,
            culprits=list(run.culprits),
            nightlies=[
                HistoryNightly(
                    n.project,
                    n.version,
                    n.filename,
                    n.sha256,
                    n.uploaded_at,
                    n.culprit,
                    n.first_bad,
                )
                for n in run.nightlies
            ],
        )
        for run in runs
    ]
