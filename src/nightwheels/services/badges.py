"""What the badges and the "latest" URLs say: each a few indexed reads of one project,
whatever the size of the index."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.expiry import State, assess
from nightwheels.core.filenames import parse_filename
from nightwheels.core.names import normalize_name
from nightwheels.core.verdicts import STALE_AFTER
from nightwheels.db.models import CompatRun, File
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import NightwheelsError, NotFound
from nightwheels.services.browse import freshness_policy

__all__ = ["Badge", "downstream_badge", "freshness_badge", "latest_file"]

MAX_LATEST_SCAN = 500


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    colour: str


def _days(delta_days: int) -> str:
    if delta_days <= 0:
        return "today"
    return f"{delta_days} day{'s' if delta_days != 1 else ''} ago"


def freshness_badge(session: Session, settings: Settings, project: str, now: datetime) -> Badge:
    """ "nightly | 2 days ago", coloured by the freshness policy (warn, final, expired)."""
    found = project_by_name(session, normalize_name(project))
    if found is None:
        raise NotFound(f"no project named {project!r}")
    last = found.last_live_upload_at
    if last is None:
        return Badge("nightly", "none", "grey")
    state = assess(last, now, freshness_policy(settings, found)).state
    colour = {
        State.FRESH: "green",
        State.EXEMPT: "green",
        State.WARN: "yellow",
        State.FINAL: "orange",
        State.EXPIRED: "red",
    }.get(state, "grey")
    return Badge("nightly", _days((now - last).days), colour)


def downstream_badge(session: Session, project: str, now: datetime) -> Badge:
    """ "tests vs nightlies | passing": the downstream's latest reported run of each Python
    and platform; failing if any fails, stale after 8 days without a report."""
    name = normalize_name(project)
    if project_by_name(session, name) is None:
        raise NotFound(f"no project named {project!r}")
    runs = session.execute(
        select(CompatRun.python, CompatRun.platform, CompatRun.outcome, CompatRun.tested_at)
        .where(CompatRun.downstream == name)
        .order_by(CompatRun.id.desc())
        .limit(100)
    ).all()
    latest: dict[tuple[str, str], tuple[str, datetime]] = {}
    for python, platform, outcome, tested_at in runs:
        latest.setdefault((python, platform), (outcome, tested_at))
    label = "tests vs nightlies"
    if not latest:
        return Badge(label, "no reports", "grey")
    if all(now - tested_at > STALE_AFTER for _, tested_at in latest.values()):
        return Badge(label, "stale", "grey")
    outcomes = {outcome for outcome, _ in latest.values()}
    if "failed" in outcomes:
        return Badge(label, "failing", "red")
    if outcomes == {"passed"}:
        return Badge(label, "passing", "green")
    return Badge(label, "could not run", "yellow")


def latest_file(session: Session, project: str, label: str, tag: str) -> File:
    """The newest live file of ``project`` in ``label`` whose wheel tags include ``tag``
    (``py3-none-any``, ``cp312-cp312-manylinux_2_17_x86_64``; ``sdist`` for the sdist)."""
    found = project_by_name(session, normalize_name(project))
    if found is None:
        raise NotFound(f"no project named {project!r}")
    rows = session.execute(
        select(File)
        .where(File.project_id == found.id, File.label == label, LIVE)
        .order_by(File.uploaded_at.desc(), File.id.desc())
        .limit(MAX_LATEST_SCAN)
    ).scalars()
    for row in rows:
        try:
            dist = parse_filename(row.filename)
        except NightwheelsError:
            continue
        if tag == "sdist":
            if dist.packagetype == "sdist":
                return row
        elif tag in {str(t) for t in dist.tags}:
            return row
    raise NotFound(f"project {found.name!r} has no live file for tag {tag!r} in label {label!r}")
