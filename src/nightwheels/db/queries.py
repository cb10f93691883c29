"""The index's shared vocabulary as queries: a live file, a project by its name.

Each phrase is written here once so that a reader (and a change to the schema) finds every
use: ``LIVE`` where a query filters files, ``project_by_name`` where a service loads one.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.db.models import File, Project

__all__ = ["LIVE", "project_by_name"]

#: A file that is listed now: not replaced, pruned, or lost (those rows keep ``removed_at``
#: for history and ``/as-of/`` views). The partial unique index ``uq_files_live`` uses the
#: same condition.
LIVE = File.removed_at.is_(None)


def project_by_name(session: Session, name: str, *, for_update: bool = False) -> Project | None:
    """The project whose normalised name is ``name`` (normalise first: ``core.names``)."""
    query = select(Project).where(Project.name == name)
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()
