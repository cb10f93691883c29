"""The change serial: one global counter; a project's serial is the value at its last change."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import bindparam, select, update
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
    .values(serial=_state.c.serial + 1)
    .returning(_state.c.serial)
)
_projects = Project.__table__
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
    lock, which is held from here to the commit; ``uploads`` (the upload times of files
    recorded in this transaction) are added to the per-day counts after it.
    """
    if project.id is None or session.new or session.dirty:  # rows the aggregates must see
        session.flush()
    values = stats.aggregates(session, project.id)  # before the serial row is locked
    serial = session.execute(_NEXT_SERIAL).scalar_one()
    # Files recorded now, per day: like the serial, a row every upload updates, so its lock
    # is taken last too (both are held only from here to the commit).
    stats.count_uploads(session, uploads)
    session.execute(_SET_PROJECT_SERIAL, {"project_id": project.id, "serial": serial, **values})
    set_committed_value(project, "serial", serial)
    return serial


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
        serial = bump(self.session, project)
        self.serials[project.name] = serial
        return serial


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
