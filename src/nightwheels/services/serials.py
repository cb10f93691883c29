"""The change serial: one global counter; a project's serial is the value at its last change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar, cast

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from nightwheels.db.models import File, IndexState, Project, UploadDay
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


# PostgreSQL, one project whose row the caller has locked: the whole bump in one statement
# (its aggregates, the serial and the totals, the day's count, the project's row), so that
# the serial's row, which every change locks until its commit, is held for one round trip
# and the commit instead of four and the commit. Each part of one statement reads the rows
# as committed when it started; the project's own rows (``old``, ``agg``) cannot have
# changed since, as the caller holds their project's lock (a file row changes only under
# it), and the serial's row is read as its latest version once its lock is granted.
_pid = bindparam("project_id")
_agg = (
    select(*(c.label(n) for c, n in zip(stats.AGGREGATE_COLUMNS, stats.COLUMNS, strict=True)))
    .where(File.__table__.c.project_id == _pid)
    .cte("agg")
)
_old = (
    select(_projects.c.serial, _projects.c.live_files, _projects.c.live_bytes)
    .where(_projects.c.id == _pid)
    .cte("old")
)
_next = (
    update(_state)
    .where(_state.c.id == 1)
    .values(
        serial=_state.c.serial + 1,
        projects=_state.c.projects
        + select(case((_old.c.serial == 0, 1), else_=0)).scalar_subquery(),
        live_files=_state.c.live_files
        + select(_agg.c.live_files).scalar_subquery()
        - select(_old.c.live_files).scalar_subquery(),
        live_bytes=_state.c.live_bytes
        + select(_agg.c.live_bytes).scalar_subquery()
        - select(_old.c.live_bytes).scalar_subquery(),
    )
    .returning(_state.c.serial)
    .cte("next")
)
_day_row = postgresql.insert(UploadDay.__table__).values(
    day=bindparam("day"), files=bindparam("files")
)
_days = _day_row.on_conflict_do_update(
    index_elements=["day"], set_={"files": UploadDay.__table__.c.files + _day_row.excluded.files}
).cte("days")
_BUMP_LOCKED_PG = (
    update(_projects)
    .where(_projects.c.id == _pid)
    .values(
        serial=select(_next.c.serial).scalar_subquery(),
        **{c: select(_agg.c[c]).scalar_subquery() for c in stats.COLUMNS},
    )
    .returning(_projects.c.serial)
    .add_cte(_days)
)


def bump(
    session: Session, project: Project, uploads: Sequence[datetime] = (), *, locked: bool = False
) -> int:
    """Take the next global serial for ``project``, in the caller's transaction.

    Plain UPDATE statements on the tables (no ORM flush: this runs on every upload); the
    loaded ``project`` is told its new serial without being marked changed. The project's
    aggregates (services/stats.py) are brought up to date first, outside the serial row's
    lock, which is held from here to the commit; the index's totals (on the serial's row)
    change by the project's difference under that lock, and ``uploads`` (the upload times
    of files recorded in this transaction) are added to the per-day counts after it.

    ``locked``: the caller holds the project's row lock (``SELECT ... FOR UPDATE``), which
    on PostgreSQL lets the whole bump be one statement (files recorded on one UTC day).
    """
    days = {t.astimezone(UTC).date().isoformat() for t in uploads}
    if locked and len(days) == 1 and session.get_bind().dialect.name == "postgresql":
        if project.id is None or session.new or session.dirty:
            session.flush()
        params = {"project_id": project.id, "day": days.pop(), "files": len(uploads)}
        serial = session.execute(_BUMP_LOCKED_PG, params).scalar_one()
        set_committed_value(project, "serial", serial)
        return int(serial)
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
