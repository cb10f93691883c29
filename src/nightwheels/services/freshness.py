"""Freshness: every project's last upload and age, and notices to maintainers of stale ones.

Notifiers (``nightwheels.trackers``) are passed in by the edge that builds them from
settings; this service only decides what to send and remembers what was sent, per project
and notifier, in ``freshness_notices``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.config import Settings
from nightwheels.core.freshness import (
    Delivery,
    Level,
    Notice,
    NoticeState,
    Thresholds,
    level_for,
    next_action,
)
from nightwheels.db.models import FreshnessNotice, Project, ProjectRole, User, utcnow
from nightwheels.services import audit
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services

log = logging.getLogger(__name__)


class Notifier(Protocol):
    name: str

    def deliver(self, notice: Notice) -> Delivery: ...


@dataclass(frozen=True)
class Freshness:
    project: str
    last_upload: datetime | None
    age: timedelta | None
    level: Level | None
    exempt: bool
    retention_days: int

    @property
    def age_days(self) -> int | None:
        return None if self.age is None else self.age.days


@dataclass(frozen=True)
class NoticeOutcome:
    project: str
    notifier: str
    action: str
    delivery: Delivery


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        warn_days=settings.freshness_warn_days,
        final_days=settings.freshness_final_days,
        cooldown_days=settings.freshness_cooldown_days,
    )


def freshness(session: Session, settings: Settings, now: datetime | None = None) -> list[Freshness]:
    """Every project: when its last file was uploaded (replaced and pruned ones count),
    from the project's aggregates (services/stats.py)."""
    now = now or utcnow()
    limits = thresholds(settings)
    rows = session.execute(
        select(
            Project.name,
            Project.last_upload_at,
            Project.retention_exempt,
            Project.retention_days,
        ).order_by(Project.name)
    )
    result = []
    for name, last, exempt, days in rows:
        age = now - last if last is not None else None
        result.append(
            Freshness(
                project=name,
                last_upload=last,
                age=age,
                level=level_for(last, now, limits) if last is not None else None,
                exempt=bool(exempt),
                retention_days=days or settings.retention_days,
            )
        )
    return result


def notice_warnings(settings: Settings, notifiers: list[Notifier]) -> list[str]:
    """What an operator should know, at start-up, about the notices that will be sent."""
    if notifiers and not settings.base_url:
        return [
            "freshness notices will carry no index URL (index_url is null, and the text names "
            "no index): set NIGHTWHEELS_BASE_URL to the index's public URL"
        ]
    return []


def stale(session: Session, settings: Settings, now: datetime | None = None) -> list[Freshness]:
    return [f for f in freshness(session, settings, now) if f.level is not None]


def _emails(session: Session, project: str) -> tuple[str, ...]:
    rows = session.execute(
        select(User.email)
        .join(ProjectRole, ProjectRole.user_id == User.id)
        .join(Project, Project.id == ProjectRole.project_id)
        .where(Project.name == project, User.email.is_not(None), User.disabled.is_(False))
        .order_by(User.email)
    )
    return tuple(e for (e,) in rows if e)


def notify(
    services: Services,
    actor: Actor,
    notifiers: list[Notifier],
    *,
    now: datetime | None = None,
) -> list[NoticeOutcome]:
    """Send the notices that are due, through every notifier; remember what was sent.

    A notifier in dry-run mode reports what it would send; its state is not changed.
    Exempt projects get no notices (nothing of theirs expires).
    """
    now = now or utcnow()
    settings = services.settings
    limits = thresholds(settings)
    outcomes: list[NoticeOutcome] = []
    if not notifiers:
        return outcomes
    with services.db.read() as session:
        projects = [f for f in freshness(session, settings, now) if f.last_upload and not f.exempt]
        info = {
            p.name: (p.id, p.repository_url)
            for p in session.execute(select(Project)).scalars()
            if p.name in {f.project for f in projects}
        }
        states = {
            (n.project_id, n.notifier): n
            for n in session.execute(select(FreshnessNotice)).scalars()
        }
    for fresh in projects:
        project_id, repository_url = info[fresh.project]
        assert fresh.last_upload is not None and fresh.age is not None
        emails: tuple[str, ...] | None = None
        for notifier in notifiers:
            row = states.get((project_id, notifier.name))
            state = (
                NoticeState(row.episode, row.level, row.is_open, row.suppressed_until, row.ref)  # type: ignore[arg-type]
                if row
                else NoticeState()
            )
            action = next_action(state, fresh.last_upload, now, limits)
            if action is None:
                continue
            if emails is None:
                with services.db.read() as session:
                    emails = _emails(session, fresh.project)
            notice = Notice(
                project=fresh.project,
                action=action,
                last_upload=fresh.last_upload,
                age_days=fresh.age.days,
                removal_at=fresh.last_upload + timedelta(days=fresh.retention_days),
                repository_url=repository_url,
                emails=emails,
                index_url=settings.base_url,
                ref=state.ref if state.is_open else None,
            )
            try:
                delivery = notifier.deliver(notice)
            except Exception as exc:  # one failing notifier must not stop the others
                log.warning("notifier %s failed for %s: %s", notifier.name, fresh.project, exc)
                delivery = Delivery("failed", state.ref, str(exc))
            outcomes.append(NoticeOutcome(fresh.project, notifier.name, action, delivery))
            if delivery.outcome not in ("dry-run", "failed"):
                _remember(services, actor, project_id, notifier.name, notice, delivery, limits)
    return outcomes


def _remember(
    services: Services,
    actor: Actor,
    project_id: int,
    notifier: str,
    notice: Notice,
    delivery: Delivery,
    limits: Thresholds,
) -> None:
    def run(session: Session) -> None:
        row = session.execute(
            select(FreshnessNotice).where(
                FreshnessNotice.project_id == project_id, FreshnessNotice.notifier == notifier
            )
        ).scalar_one_or_none()
        if row is None:
            row = FreshnessNotice(project_id=project_id, notifier=notifier, is_open=False)
            session.add(row)
        if delivery.outcome == "closed-by-maintainer":
            closed = delivery.closed_at or utcnow()
            row.suppressed_until = closed + timedelta(days=limits.cooldown_days)
            row.is_open = False
            row.episode = notice.last_upload
            row.level = notice.action if notice.action != "resolved" else row.level  # type: ignore[assignment]
        elif notice.action == "resolved":
            row.is_open = False
            row.level = None
        else:
            row.episode = notice.last_upload
            row.level = notice.action
            row.is_open = delivery.outcome == "sent"
        row.ref = delivery.ref or row.ref
        row.updated_at = utcnow()
        audit.record(
            session,
            actor,
            f"freshness.{notice.action}",
            project=notice.project,
            target=notifier,
            outcome=delivery.outcome,
            ref=row.ref,
        )

    services.db.run_write(run)
