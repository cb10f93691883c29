"""The change serial: one global counter; a project's serial is the value at its last change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar, cast

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from nightwheels.db.models import IndexState, Project
from nightwheels.services import stats

if TYPE_CHECKING:
    from nightwheels.services.context import Services

T = TypeVar("T")

_state = IndexState.__table__
_NEXT_SERIAL = (
    update(_state)
    .where(_state.c.id == 1)
    .values(serial=_state.c.serial + bindparam("n"))
    .returning(_state.c.serial)
)
_projects = Project.__table__
_ids = bindparam("project_ids", expanding=True)
_mine = _projects.c.id.in_(_ids)
# The index's totals move by the bumped projects' difference: their new aggregates less
# what their rows hold until this transaction writes them. Run once the serial row is
# locked, so that the rows read are what every earlier bump committed (PostgreSQL reads
# each statement's rows as committed when it starts). A project counts from its first bump.
_ADD_TOTALS = (
    update(_state)
    .where(_state.c.id == 1)
    .values(
        projects=_state.c.projects
        + select(func.count()).where(_mine, _projects.c.serial == 0).scalar_subquery(),
        live_files=_state.c.live_files
        + bindparam("live_files")
        - select(func.coalesce(func.sum(_projects.c.live_files), 0)).where(_mine).scalar_subquery(),
        live_bytes=_state.c.live_bytes
        + bindparam("live_bytes")
        - select(func.coalesce(func.sum(_projects.c.live_bytes), 0)).where(_mine).scalar_subquery(),
    )
)
_SET_PROJECT_SERIAL = (
    update(_projects)
    .where(_projects.c.id == bindparam("project_id"))
    .values(serial=bindparam("serial"), **{c: bindparam(c) for c in stats.COLUMNS})
)


def bump(session: Session, project: Project, uploads: Sequence[datetime] = ()) -> int:
    """Take the next global serial for ``project``, in the caller's transaction.

    Plain UPDATE statements on the tables (no ORM flush: this runs on every upload); the
    loaded ``project`` is told its new serial without being marked changed. The project's
    aggregates (services/stats.py) are brought up to date first, outside the serial row's
    lock, which is held from here to the commit; the index's totals (on the serial's row)
    change by the project's difference under that lock, and ``uploads`` (the upload times
    of files recorded in this transaction) are added to the per-day counts after it.
    """
    return bump_many(session, [project], uploads)[0]


def bump_many(
    session: Session, projects: Sequence[Project], uploads: Sequence[datetime] = ()
) -> list[int]:
    """:func:`bump` for several distinct projects in one transaction, each with a serial of
    its own (in the order given), with a statement each for the aggregates, the serials
    and the project rows, whatever the number of projects."""
    if not projects:
        return []
    if any(p.id is None for p in projects) or session.new or session.dirty:
        session.flush()  # rows the aggregates must see
    ids = [p.id for p in projects]
    if len(set(ids)) != len(ids):
        raise ValueError("bump_many: a project appears twice")
    values = stats.aggregates_of(session, ids)  # before the serial row is locked
    last = session.execute(_NEXT_SERIAL, {"n": len(projects)}).scalar_one()
    first = last - len(projects) + 1
    session.execute(
        _ADD_TOTALS,
        {
            "project_ids": ids,
            "live_files": sum(cast(int, v["live_files"]) for v in values.values()),
            "live_bytes": sum(cast(int, v["live_bytes"]) for v in values.values()),
        },
    )
    # Files recorded now, per day: like the serial, a row every upload updates, so its lock
    # is taken last too (both are held only from here to the commit).
    stats.count_uploads(session, uploads)
    rows = [
        {"project_id": p.id, "serial": first + i, **values[p.id]} for i, p in enumerate(projects)
    ]
    session.execute(_SET_PROJECT_SERIAL, rows[0] if len(rows) == 1 else rows)
    for row, project in zip(rows, projects, strict=True):
        set_committed_value(project, "serial", row["serial"])
    return [row["serial"] for row in rows]


def current(session: Session) -> int:
    return session.execute(select(IndexState.serial).where(IndexState.id == 1)).scalar_one()


def changed_since(session: Session, serial: int) -> list[tuple[str, int]]:
    rows = session.execute(select(Project.name, Project.serial).where(Project.serial > serial))
    return [(name, s) for name, s in rows]


class Changes:
    """The projects one write transaction changed, with the serial each was given."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.serials: dict[str, int] = {}

    def bump(self, project: Project) -> int:
        """``bump`` the project's serial in this transaction; it is announced after the commit."""
        return self.bump_many([project])[0]

    def bump_many(self, projects: Sequence[Project]) -> list[int]:
        """``bump_many`` in this transaction; announced after the commit."""
        taken = bump_many(self.session, projects)
        for project, serial in zip(projects, taken, strict=True):
            self.serials[project.name] = serial
        return taken


def write(services: Services, fn: Callable[[Session, Changes], T]) -> T:
    """One unit of work: run ``fn`` in a write transaction, then announce what it changed.

    ``fn`` bumps each project it changes through ``changes.bump``. The announcement
    (``Services.changed``: in-process page caches) comes only after the commit, and only for
    the attempt that committed (``run_write`` may retry ``fn`` on a busy database).
    """
    attempt: list[Changes] = []

    def run(session: Session) -> T:
        attempt[:] = [Changes(session)]
        return fn(session, attempt[0])

    result = services.db.run_write(run)
    for name, serial in attempt[0].serials.items():
        services.changed(name, serial)
    return result
