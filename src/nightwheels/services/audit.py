"""The append-only audit log: every privileged action is recorded here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from nightwheels.db.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where (for the audit log)."""

    name: str | None
    source: str | None = None


SYSTEM = Actor(name="system", source="local")


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    project: str | None = None,
    target: str | None = None,
    **details: Any,
) -> None:
    session.add(
        AuditEvent(
            actor=actor.name,
            source=actor.source,
            action=action,
            project=project,
            target=target,
            details=details,
        )
    )
