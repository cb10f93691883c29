"""A project's Atom feed: culprit events (a downstream's bisect named one of its nightlies),
known-bad marks, and freshness changes (stale warnings and their resolution)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.feeds import Entry
from nightwheels.core.names import normalize_name
from nightwheels.db.models import CompatNightly, CompatRun, FreshnessNotice, KnownBadBuild
from nightwheels.db.queries import project_by_name
from nightwheels.errors import NotFound

__all__ = ["project_entries"]

MAX_ENTRIES = 50


def project_entries(session: Session, project: str, base_url: str) -> list[Entry]:
    name = normalize_name(project)
    found = project_by_name(session, name)
    if found is None:
        raise NotFound(f"no project named {project!r}")
    page = f"{base_url}/project/{name}/"
    entries: list[Entry] = []
    culprits = session.execute(
        select(CompatRun, CompatNightly)
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .where(CompatNightly.project == name, CompatNightly.culprit.is_(True))
        .order_by(CompatRun.id.desc())
        .limit(MAX_ENTRIES)
    ).all()
    seen: set[int] = set()
    for run, nightly in culprits:
        if run.id in seen:
            continue
        seen.add(run.id)
        what = "first bad build" if nightly.first_bad else "nightly"
        entries.append(
            Entry(
                id=f"tag:nightwheels,2026:compat-run/{run.id}/{name}",
                title=f"{run.downstream} fails with {name} {nightly.version}",
                updated=run.tested_at,
                summary=(
                    f"{run.downstream}'s tests (Python {run.python}, {run.platform}) fail, and its "
                    f"bisect names {name}'s {what} {nightly.filename} as the cause."
                ),
                link=page,
            )
        )
    for mark in session.execute(
        select(KnownBadBuild)
        .where(KnownBadBuild.project_id == found.id)
        .order_by(KnownBadBuild.marked_at.desc())
        .limit(MAX_ENTRIES)
    ).scalars():
        entries.append(
            Entry(
                id=f"tag:nightwheels,2026:known-bad/{found.id}/{mark.sha256}",
                title=f"{name} {mark.version} marked as a known regression",
                updated=mark.marked_at,
                summary=f"{mark.filename}: {mark.reason}",
                link=mark.link or page,
            )
        )
    for notice in session.execute(
        select(FreshnessNotice).where(FreshnessNotice.project_id == found.id)
    ).scalars():
        state = (
            f"stale ({notice.level} warning)" if notice.is_open and notice.level else "fresh again"
        )
        entries.append(
            Entry(
                id=f"tag:nightwheels,2026:freshness/{found.id}/{notice.notifier}/{notice.updated_at:%Y%m%d%H%M%S}",
                title=f"{name} nightlies are {state}",
                updated=notice.updated_at,
                summary=f"last upload: {notice.episode:%Y-%m-%d}"
                if notice.episode
                else "no upload",
                link=page,
            )
        )
    entries.sort(key=lambda e: e.updated, reverse=True)
    return entries[:MAX_ENTRIES]
