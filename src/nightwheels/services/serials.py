"""The change serial: one global counter; a project's serial is the value at its last change."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightwheels.db.models import IndexState, Project


def bump(session: Session, project: Project) -> int:
    serial = session.execute(
        update(IndexState)
        .where(IndexState.id == 1)
        .values(serial=IndexState.serial + 1)
        .returning(IndexState.serial)
    ).scalar_one()
    project.serial = serial
    return serial


def current(session: Session) -> int:
    return session.execute(select(IndexState.serial).where(IndexState.id == 1)).scalar_one()


def changed_since(session: Session, serial: int) -> list[tuple[str, int]]:
    rows = session.execute(select(Project.name, Project.serial).where(Project.serial > serial))
    return [(name, s) for name, s in rows]
