"""Per-build verdicts: for each recent nightly build of a project, which downstreams tested
it and with what outcome ("tonight's numpy build: 14 downstreams tested, 12 passed, 2
failed, culprit numpy in 1").

A build is the set of a project's files uploaded together: the files of one version that
share an upload time (one batch, one atomic upload or one published session record all
their files at the same instant), or a single file uploaded on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.verdicts import Verdict, verdict
from nightwheels.db.models import CompatNightly, CompatRun, File, utcnow
from nightwheels.db.queries import project_by_name
from nightwheels.errors import NotFound
from nightwheels.services.known_bad import known_bad_by_sha256

__all__ = ["Build", "DownstreamVerdict", "build_verdicts"]

MAX_BUILDS = 20
_SCAN_FILES = 400  # the newest files read to find the builds


@dataclass(frozen=True)
class DownstreamVerdict:
    downstream: str
    verdict: Verdict
    tested_at: datetime
    python: str
    platform: str
    first_bad: bool  # its bisect named this build as the first bad one


@dataclass
class Build:
    version: str
    uploaded_at: datetime
    files: list[str]
    sha256s: list[str]
    downstreams: list[DownstreamVerdict] = field(default_factory=list)
    known_bad: str | None = None  # the reason, when an admin marked it
    known_bad_link: str | None = None

    def count(self, state: Verdict) -> int:
        return sum(1 for d in self.downstreams if d.verdict == state)

    @property
    def failed(self) -> int:
        return sum(1 for d in self.downstreams if d.verdict.failing)

    @property
    def named_first_bad(self) -> list[str]:
        return sorted({d.downstream for d in self.downstreams if d.first_bad})


def _builds(session: Session, project_id: int, limit: int) -> list[tuple[Build, list[int]]]:
    rows = session.execute(
        select(File.id, File.version, File.uploaded_at, File.filename, File.sha256)
        .where(File.project_id == project_id)
        .order_by(File.uploaded_at.desc(), File.filename)
        .limit(_SCAN_FILES)
    ).all()
    groups: dict[tuple[str, datetime], tuple[Build, list[int]]] = {}
    for file_id, version, uploaded_at, filename, sha256 in rows:
        key = (version, uploaded_at.replace(microsecond=0))
        if key not in groups:
            if len(groups) == limit:
                break
            groups[key] = (Build(version, uploaded_at, [], []), [])
        build, ids = groups[key]
        if filename not in build.files:
            build.files.append(filename)
            build.sha256s.append(sha256)
        ids.append(file_id)
    return list(groups.values())


def build_verdicts(
    session: Session, project: str, *, limit: int = 10, now: datetime | None = None
) -> list[Build]:
    """The newest ``limit`` builds of ``project``, newest first, each with the latest
    verdict of every downstream that tested one of its files."""
    now = now or utcnow()
    name = normalize_name(project)
    found = project_by_name(session, name)
    if found is None:
        raise NotFound(f"no project named {name!r}")
    builds = _builds(session, found.id, min(limit, MAX_BUILDS))
    file_build = {file_id: index for index, (_, ids) in enumerate(builds) for file_id in ids}
    if not file_build:
        return []
    latest = (
        select(func.max(CompatNightly.run_id).label("run_id"), CompatNightly.file_id)
        .join(CompatRun, CompatRun.id == CompatNightly.run_id)
        .where(CompatNightly.file_id.in_(sorted(file_build)))
        .group_by(CompatRun.downstream, CompatNightly.file_id)
        .subquery()
    )
    rows = session.execute(
        select(CompatRun, CompatNightly.file_id, CompatNightly.first_bad)
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .join(
            latest,
            (latest.c.run_id == CompatNightly.run_id) & (latest.c.file_id == CompatNightly.file_id),
        )
    ).all()
    seen: dict[tuple[int, str], DownstreamVerdict] = {}
    for run, file_id, first_bad in rows:
        index = file_build[file_id]
        key = (index, run.downstream)
        current = seen.get(key)
        if current is not None and current.tested_at >= run.tested_at and not first_bad:
            continue
        seen[key] = DownstreamVerdict(
            downstream=run.downstream,
            verdict=verdict(run.outcome, run.culprits, name, run.tested_at, now),
            tested_at=run.tested_at,
            python=run.python,
            platform=run.platform,
            first_bad=bool(first_bad) or (current.first_bad if current else False),
        )
    for (index, _), item in sorted(seen.items()):
        builds[index][0].downstreams.append(item)
    marks = known_bad_by_sha256(session, {sha for build, _ in builds for sha in build.sha256s})
    for build, _ in builds:
        mark = next((marks[sha] for sha in build.sha256s if sha in marks), None)
        if mark is not None:
            build.known_bad, build.known_bad_link = mark.reason, mark.link
    return [build for build, _ in builds]
