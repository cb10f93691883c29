"""Pruning: apply the retention plan (core/retention.py) to the index.

The plan is made from one read of every live file; nothing is written unless the whole plan
was made without error. It is then applied a few dozen projects per short write transaction
(each changed project gets a serial of its own), so uploads and page renders interleave
with a long prune. Inside each transaction, a project changed since planning (its serial
moved: every change moves it) has its rules evaluated again on its current rows, and a file
is removed only if both the plan and this fresh evaluation remove it: a concurrent upload,
replace or prune can only make a run remove less, never break the rules' guarantees. A
project whose serial did not move has the rows it was planned on.

Removing a file marks its row (``removed_reason='pruned'``): it leaves the simple pages at
once, stays downloadable for the history window, and its bytes go with garbage collection.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightwheels.core.names import normalize_name
from nightwheels.core.pacing import CostPacer, Pacer
from nightwheels.core.retention import (
    Decision,
    FileRecord,
    ParseCache,
    Plan,
    ProjectInput,
    ProjectPlan,
    make_plan,
    plan_project,
)
from nightwheels.core.simple_pages import render_project_html, render_project_json
from nightwheels.db.models import File, Project, utcnow
from nightwheels.db.queries import LIVE
from nightwheels.errors import NotFound
from nightwheels.services import audit, listing, serials
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services
from nightwheels.services.retention import project_policy

log = logging.getLogger(__name__)

_FILE_COLUMNS = (
    File.id,
    File.filename,
    File.version,
    File.uploaded_at,
    File.label,
    File.pinned,
    File.size,
)


@dataclass
class PruneResult:
    plan: Plan
    dry_run: bool
    removed: dict[str, list[Decision]] = field(default_factory=dict)
    # planned removals not applied because the project changed meanwhile
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def removed_count(self) -> int:
        return sum(len(v) for v in self.removed.values())

    @property
    def removed_bytes(self) -> int:
        return sum(d.file.size for v in self.removed.values() for d in v)


def _inputs(
    session: Session, services: Services, names: Iterable[str] | None = None
) -> list[ProjectInput]:
    # The serials are read before the files: a change committed in between (PostgreSQL
    # reads each statement as committed when it starts) shows as a newer serial when the
    # plan is applied, and the project is planned again then.
    query = select(
        Project.id, Project.name, Project.retention_keep, Project.retention_days,
        Project.retention_exempt, Project.serial,
    ).order_by(Project.name)  # fmt: skip
    if names is not None:
        wanted = sorted({normalize_name(n) for n in names})
        query = query.where(Project.name.in_(wanted))
        found = {row.name for row in session.execute(query)}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise NotFound(f"no project named {', '.join(map(repr, missing))}")
    projects = list(session.execute(query))
    files: dict[int, list[FileRecord]] = defaultdict(list)
    file_query = select(File.project_id, *_FILE_COLUMNS).where(LIVE)
    if names is not None:
        file_query = file_query.where(File.project_id.in_([p.id for p in projects]))
    for row in session.execute(file_query):
        files[row[0]].append(FileRecord(*row[1:]))
    return [
        ProjectInput(
            p.name,
            project_policy(
                services.settings, p.retention_keep, p.retention_days, p.retention_exempt
            ),
            tuple(files.get(p.id, ())),
            p.serial,
        )
        for p in projects
    ]


def build_plan(
    services: Services,
    *,
    now: datetime | None = None,
    force: bool = False,
    projects: Iterable[str] | None = None,
) -> Plan:
    """The whole plan, or :class:`PruneAborted` if any project cannot be planned safely."""
    with services.db.read() as session:
        inputs = _inputs(session, services, projects)
    return make_plan(inputs, now or utcnow(), force=force)


# Projects per write transaction, and a bound on the files they remove. One transaction
# per project cost 8 statements and a commit each (53-90 ms a project on a loaded machine,
# 188 s for 2,083 projects); a batch costs 7 statements in all. A transaction of 32
# projects holds the write lock for tens of milliseconds, less than one upload's round trip.
BATCH_PROJECTS = 32
BATCH_FILES = 2000


@dataclass(frozen=True)
class _Applied:
    removed: list[Decision]
    skipped: int
    remaining: int  # live files left to list: what a server re-renders


def _apply_batch(
    services: Services,
    actor: Actor,
    batch: list[ProjectPlan],
    now: datetime,
    force: bool,
    cache: ParseCache,
) -> dict[str, _Applied]:
    """Apply the plans of a few projects in one write transaction, one serial bump per
    changed project. A project whose serial moved since planning (every change moves it)
    is planned again on its current rows, and only what both plans remove is removed; one
    whose serial did not has the rows it was planned on."""

    def run(session: Session, changes: serials.Changes) -> dict[str, _Applied]:
        # Locked in name order (PostgreSQL), as every batch of every prune takes them.
        projects = {
            p.name: p
            for p in session.execute(
                select(Project)
                .where(Project.name.in_(sorted(plan.project for plan in batch)))
                .order_by(Project.name)
                .with_for_update()
            ).scalars()
        }
        moved = [
            projects[plan.project]
            for plan in batch
            if plan.project in projects and projects[plan.project].serial != plan.version
        ]
        files: dict[int, list[FileRecord]] = defaultdict(list)
        if moved:
            for row in session.execute(
                select(File.project_id, *_FILE_COLUMNS).where(
                    File.project_id.in_([p.id for p in moved]), LIVE
                )
            ):
                files[row[0]].append(FileRecord(*row[1:]))
        applied: dict[str, _Applied] = {}
        changed: list[Project] = []
        for plan in sorted(batch, key=lambda plan: plan.project):
            name, planned = plan.project, plan.removals
            project = projects.get(name)
            if project is None:
                applied[name] = _Applied([], len(planned), 0)
                continue
            if project.serial != plan.version:
                fresh = plan_project(
                    ProjectInput(
                        name,
                        project_policy(
                            services.settings,
                            project.retention_keep,
                            project.retention_days,
                            project.retention_exempt,
                        ),
                        tuple(files.get(project.id, ())),
                    ),
                    now,
                    force=force,
                    cache=cache,
                )
                ids = {d.file.id for d in planned}
                removals = [d for d in fresh.removals if d.file.id in ids]
                total = fresh.total
            else:
                removals, total = planned, plan.total
            applied[name] = _Applied(removals, len(planned) - len(removals), total - len(removals))
            if removals:
                changed.append(project)
        if not changed:
            return applied
        session.execute(
            update(File)
            .where(File.id.in_([d.file.id for a in applied.values() for d in a.removed]), LIVE)
            .values(removed_at=utcnow(), removed_reason="pruned"),
            execution_options={"synchronize_session": False},
        )
        # One event per project and run: a first prune of a big index removes 10^5 files.
        audit.record_each(
            session,
            actor,
            "files.prune",
            [
                (
                    p.name,
                    {
                        "count": len(applied[p.name].removed),
                        "files": [
                            [d.file.filename, d.file.label, d.reason]
                            for d in applied[p.name].removed
                        ],
                    },
                )
                for p in changed
            ],
        )
        changes.bump_many(changed)
        return applied

    return serials.write(services, run)


def _batches(plan: Plan) -> Iterator[list[ProjectPlan]]:
    batch: list[ProjectPlan] = []
    files = 0
    for project in plan.projects:
        planned = len(project.removals)
        if not planned:
            continue
        if batch and (len(batch) >= BATCH_PROJECTS or files + planned > BATCH_FILES):
            yield batch
            batch, files = [], 0
        batch.append(project)
        files += planned
    if batch:
        yield batch


def render_cost(services: Services, name: str, labels: Iterable[str]) -> float:
    """CPU seconds it takes to read and render a project's pages (both formats, each
    label): what every server pays for a change to the project. Measured, so that the pace
    follows the size of the pages; CPU time of this thread, so that other work on the
    machine does not make a prune crawl."""
    start = time.thread_time()
    with services.db.read() as session:
        for label in sorted(set(labels)):
            found = listing.load_listing(session, name, label, root="../../")
            if found is not None:
                render_project_html(found)
                render_project_json(found)
    return time.thread_time() - start


def _batch_cost(services: Services, applied: dict[str, _Applied]) -> float:
    """What re-rendering a batch's pages costs a server, from one project measured: its
    render time per listed file, times the files the batch's changed projects list (a
    page's render follows its rows). Measuring each project cost the prune as much CPU as
    the servers' re-renders it paces for."""
    changed = {name: a for name, a in applied.items() if a.removed}
    if not changed:
        return 0.0
    name, sample = max(changed.items(), key=lambda item: item[1].remaining)
    cost = render_cost(services, name, (d.file.label for d in sample.removed))
    listed = sum(max(1, a.remaining) for a in changed.values())
    return cost * listed / max(1, sample.remaining)


def apply_plan(services: Services, actor: Actor, plan: Plan, *, force: bool = False) -> PruneResult:
    """Apply a plan a batch of projects at a time (``BATCH_PROJECTS`` per transaction),
    paced by what each batch costs the servers (``prune_load_share`` of their time at
    most; ``prune_projects_per_second`` a ceiling, counted in projects)."""
    result = PruneResult(plan, dry_run=False)
    settings = services.settings
    pacer = CostPacer(settings.prune_load_share)
    floor = Pacer(settings.prune_projects_per_second)
    for batch in _batches(plan):
        pacer.wait()
        for _ in batch:
            floor.wait()
        applied = _apply_batch(services, actor, batch, plan.now, force, plan.cache)
        if settings.prune_load_share > 0:
            pacer.spent(_batch_cost(services, applied))
        for name, a in applied.items():
            if a.removed:
                result.removed[name] = a.removed
            if a.skipped:
                result.skipped[name] = a.skipped
    if result.removed:
        log.info("pruned %d files of %d projects", result.removed_count, len(result.removed))
    return result


def prune(
    services: Services,
    actor: Actor,
    *,
    dry_run: bool = False,
    force: bool = False,
    now: datetime | None = None,
    projects: Iterable[str] | None = None,
) -> PruneResult:
    """Plan, and unless ``dry_run``, apply. Refused projects are reported, not pruned."""
    plan = build_plan(services, now=now, force=force, projects=projects)
    if dry_run:
        return PruneResult(plan, dry_run=True)
    return apply_plan(services, actor, plan, force=force)
