"""The compatibility matrix: every upstream with nightlies against every downstream that
reports, each cell the downstream's latest result with that upstream's nightly.

Its cost follows the compatibility record (runs reported), never the number of files in
the index: one grouped query finds the latest run per (downstream, upstream), one more
loads those runs' rows for the cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from nightwheels.core.verdicts import Verdict, verdict
from nightwheels.db.models import CompatNightly, CompatRun, Project, utcnow
from nightwheels.services.compat import own_link
from nightwheels.services.known_bad import KnownBad, known_bad_by_sha256

__all__ = ["Cell", "Matrix", "matrix"]

MAX_FILTER = 40


@dataclass(frozen=True)
class Cell:
    upstream: str
    downstream: str
    verdict: Verdict
    outcome: str  # as reported
    tested_at: datetime
    python: str
    platform: str
    version: str  # of the upstream's nightly the run installed
    filename: str
    sha256: str
    run_id: int
    run_url: str | None  # only inside the downstream's own repository
    culprits: tuple[str, ...]
    first_bad: str | None = None  # the build the bisect named first bad (a filename)
    known_bad: KnownBad | None = None


@dataclass(frozen=True)
class Matrix:
    upstreams: list[str]
    downstreams: list[str]
    cells: dict[tuple[str, str], Cell]  # (upstream, downstream)
    pythons: list[str]
    platforms: list[str]
    python: str | None
    platform: str | None
    generated_at: datetime

    def cell(self, upstream: str, downstream: str) -> Cell | None:
        return self.cells.get((upstream, downstream))

    def count(self, upstream: str, state: Verdict) -> int:
        return sum(1 for (u, _), c in self.cells.items() if u == upstream and c.verdict == state)


def _filters(python: str | None, platform: str | None):  # type: ignore[no-untyped-def]
    conditions = []
    if python:
        conditions.append(CompatRun.python.startswith(python[:MAX_FILTER], autoescape=True))
    if platform:
        conditions.append(CompatRun.platform.contains(platform[:MAX_FILTER], autoescape=True))
    return and_(True, *conditions)


def matrix(
    session: Session,
    *,
    python: str | None = None,
    platform: str | None = None,
    now: datetime | None = None,
) -> Matrix:
    """The latest result of each (upstream, downstream) pair, optionally for one Python
    version (a prefix: ``3.12``) and platform (a substring: ``linux``)."""
    now = now or utcnow()
    latest = (
        select(func.max(CompatRun.id).label("run_id"))
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .where(_filters(python, platform))
        .group_by(CompatRun.downstream, CompatNightly.project)
        .subquery()
    )
    runs = {
        run.id: run
        for run in session.execute(
            select(CompatRun).where(CompatRun.id.in_(select(latest.c.run_id)))
        ).scalars()
    }
    repositories = dict(
        session.execute(
            select(Project.name, Project.repository_url).where(
                Project.name.in_(sorted({r.downstream for r in runs.values()}))
            )
        ).all()
    )
    nightlies = session.execute(
        select(CompatNightly).where(CompatNightly.run_id.in_(sorted(runs)))
    ).scalars()
    tested: dict[tuple[int, str], CompatNightly] = {}
    first_bad: dict[tuple[int, str], CompatNightly] = {}
    for n in nightlies:
        key = (n.run_id, n.project)
        if n.first_bad:
            first_bad.setdefault(key, n)
        # The file the run installed: its row, else the first-bad row when the bisect named
        # the very build it tested (one row, both).
        if not n.first_bad or key not in tested:
            tested[key] = n if not n.first_bad else tested.get(key, n)
    known = known_bad_by_sha256(
        session, {n.sha256 for n in tested.values()} | {n.sha256 for n in first_bad.values()}
    )
    cells: dict[tuple[str, str], Cell] = {}
    for (run_id, upstream), n in tested.items():
        run = runs[run_id]
        key = (upstream, run.downstream)
        previous = cells.get(key)
        if previous is not None and previous.run_id > run_id:
            continue
        bad = first_bad.get((run_id, upstream))
        state = verdict(run.outcome, run.culprits, upstream, run.tested_at, now)
        cells[key] = Cell(
            upstream=upstream,
            downstream=run.downstream,
            verdict=state,
            outcome=run.outcome,
            tested_at=run.tested_at,
            python=run.python,
            platform=run.platform,
            version=n.version,
            filename=n.filename,
            sha256=n.sha256,
            run_id=run.id,
            run_url=own_link(run.run_url, repositories.get(run.downstream)),
            culprits=tuple(run.culprits),
            first_bad=bad.filename if bad is not None else None,
            known_bad=known.get(bad.sha256 if bad is not None else n.sha256)
            if state.failing
            else None,
        )
    choices = session.execute(
        select(CompatRun.python, CompatRun.platform).distinct().limit(200)
    ).all()
    return Matrix(
        upstreams=sorted({u for u, _ in cells}),
        downstreams=sorted({d for _, d in cells}),
        cells=cells,
        pythons=sorted({p for p, _ in choices}),
        platforms=sorted({p for _, p in choices}),
        python=python,
        platform=platform,
        generated_at=now,
    )
