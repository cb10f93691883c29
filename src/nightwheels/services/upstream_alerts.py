"""Upstream alerts: an upstream hears that a downstream's bisect named one of its nightlies.

SPEC 4's point is that an upstream learns of a regression before it releases. A project
admin of the upstream opts in with one or more channels (a signed webhook, an issue in the
upstream's own GitHub repository with a token it provides, e-mail), each immediate or as a
daily digest. The maintenance round (``nightwheels alerts``, or the server's schedule):

1. **scans** the compatibility record for failed runs that name a culprit with a channel:
   there is one alert per (upstream build, downstream, failure set), never one per run; a
   later run with the same failures counts on the same alert;
2. **resolves** an open alert when the downstream passes again with a newer build of the
   upstream;
3. **delivers** what changed to each channel (opened, resolved; a digest channel gets one
   message a day), remembering per channel what it was told, so a re-run sends nothing twice.

Every delivery is in the audit log; a dry run decides and logs everything and sends nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightwheels.core.alerts import Alert, ChannelInfo, Sender
from nightwheels.core.names import normalize_name
from nightwheels.db.models import (
    AlertChannel,
    CompatNightly,
    CompatRun,
    Project,
    UpstreamAlert,
    utcnow,
)
from nightwheels.db.queries import project_by_name
from nightwheels.errors import InvalidRequest, NotFound
from nightwheels.services import audit
from nightwheels.services.audit import Actor
from nightwheels.services.auth import Principal, require_project_admin
from nightwheels.services.compat import own_link
from nightwheels.services.context import Services
from nightwheels.services.known_bad import known_bad_by_sha256

__all__ = [
    "KINDS",
    "Alert",
    "ChannelInfo",
    "Sender",
    "add_channel",
    "list_alerts",
    "list_channels",
    "remove_channel",
    "run_alerts",
]

KINDS = ("webhook", "github", "email")
SCAN_WINDOW = timedelta(days=30)
DIGEST_EVERY = timedelta(days=1)
MAX_CHANNELS = 10


# -- channels ---------------------------------------------------------------------------


def _project(session: Session, name: str) -> Project:
    found = project_by_name(session, normalize_name(name))
    if found is None:
        raise NotFound(f"no project named {name!r}")
    return found


def _info(project: str, row: AlertChannel) -> ChannelInfo:
    return ChannelInfo(
        row.id, project, row.kind, row.target, row.digest, bool(row.secret), row.created_by,
        row.created_at,
    )  # fmt: skip


def _check_target(kind: str, target: str) -> str:
    target = target.strip()
    if kind == "webhook":
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest("a webhook channel's target is an http(s) URL")
    elif kind == "github":
        owner, _, name = target.partition("/")
        if not owner or not name or "/" in name or not target.isascii():
            raise InvalidRequest("a github channel's target is a repository: OWNER/NAME")
    elif kind == "email":
        local, _, domain = target.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in target):
            raise InvalidRequest("an email channel's target is an e-mail address")
    else:
        raise InvalidRequest(f"a channel is one of: {', '.join(KINDS)}")
    if len(target) > 500:
        raise InvalidRequest("the target is longer than 500 characters")
    return target


def add_channel(
    session: Session,
    principal: Principal,
    project_name: str,
    *,
    kind: str,
    target: str,
    secret: str | None = None,
    digest: bool = False,
) -> ChannelInfo:
    """Opt a project in to alerts through a channel (its admins only)."""
    project = _project(session, project_name)
    require_project_admin(session, principal, project, "configure upstream alerts")
    target = _check_target(kind, target)
    if kind == "github" and not secret:
        raise InvalidRequest("a github channel needs a token (secret) that may open issues there")
    count = len(
        session.execute(select(AlertChannel.id).where(AlertChannel.project_id == project.id)).all()
    )
    if count >= MAX_CHANNELS:
        raise InvalidRequest(f"a project has at most {MAX_CHANNELS} alert channels")
    row = AlertChannel(
        project_id=project.id,
        kind=kind,
        target=target,
        secret=(secret or None) and secret[:500],
        digest=digest,
        created_by=principal.user_name,
    )
    session.add(row)
    session.flush()
    audit.record(
        session, principal.actor, "alert.channel.add", project=project.name, target=kind,
        channel=row.id, digest=digest,
    )  # fmt: skip
    return _info(project.name, row)


def remove_channel(
    session: Session, principal: Principal, project_name: str, channel_id: int
) -> None:
    project = _project(session, project_name)
    require_project_admin(session, principal, project, "configure upstream alerts")
    row = session.get(AlertChannel, channel_id)
    if row is None or row.project_id != project.id:
        raise NotFound(f"project {project.name!r} has no alert channel {channel_id}")
    session.delete(row)
    audit.record(
        session, principal.actor, "alert.channel.remove", project=project.name, target=row.kind,
        channel=channel_id,
    )  # fmt: skip


def list_channels(session: Session, principal: Principal, project_name: str) -> list[ChannelInfo]:
    project = _project(session, project_name)
    require_project_admin(session, principal, project, "see upstream alert channels")
    rows = session.execute(
        select(AlertChannel).where(AlertChannel.project_id == project.id).order_by(AlertChannel.id)
    ).scalars()
    return [_info(project.name, row) for row in rows]


def _alert(row: UpstreamAlert, known: dict[str, str]) -> Alert:
    return Alert(
        id=row.id,
        upstream=row.upstream,
        build_version=row.build_version,
        build_filename=row.build_filename,
        build_sha256=row.build_sha256,
        downstream=row.downstream,
        failures=list(row.failures),
        run_url=row.run_url,
        state=row.state,
        runs=row.runs,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        resolved_at=row.resolved_at,
        known_bad=known.get(row.build_sha256),
    )


def list_alerts(session: Session, project_name: str) -> list[Alert]:
    """A project's alerts, newest first (public, like the compatibility record)."""
    project = _project(session, project_name)
    rows = session.execute(
        select(UpstreamAlert)
        .where(UpstreamAlert.upstream == project.name)
        .order_by(UpstreamAlert.last_seen.desc())
        .limit(200)
    ).scalars()
    return [_alert(row, {}) for row in rows]


# -- the maintenance round --------------------------------------------------------------


def failures_key(outcome: str, failures: list[str]) -> str:
    text = "\n".join(sorted(failures)) if failures else f"<{outcome}>"
    return hashlib.sha256(text.encode()).hexdigest()


def _scan(session: Session, now: datetime) -> int:
    """Alerts from new failed runs that name an upstream with a channel; answers how many
    alerts were opened or counted a new run."""
    watched = set(
        session.execute(
            select(Project.name).join(AlertChannel, AlertChannel.project_id == Project.id)
        ).scalars()
    )
    if not watched:
        return 0
    rows = session.execute(
        select(CompatRun, CompatNightly)
        .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
        .where(
            CompatRun.outcome == "failed",
            CompatRun.tested_at >= now - SCAN_WINDOW,
            CompatNightly.culprit.is_(True),
            CompatNightly.project.in_(sorted(watched)),
        )
        .order_by(CompatRun.id)
    ).all()
    # The build an alert is about: the first bad build if the bisect named one, else the
    # culprit's nightly the run installed.
    builds: dict[tuple[int, str], CompatNightly] = {}
    for run, nightly in rows:
        key = (run.id, nightly.project)
        if nightly.first_bad or key not in builds:
            builds[key] = nightly
    runs = {run.id: run for run, _ in rows}
    repositories = dict(
        session.execute(
            select(Project.name, Project.repository_url).where(
                Project.name.in_(sorted({r.downstream for r in runs.values()}))
            )
        ).all()
    )
    changed = 0
    for (run_id, upstream), build in sorted(builds.items()):
        run = runs[run_id]
        key = failures_key(run.outcome, list(run.failures))
        alert = session.execute(
            select(UpstreamAlert).where(
                UpstreamAlert.upstream == upstream,
                UpstreamAlert.build_sha256 == build.sha256,
                UpstreamAlert.downstream == run.downstream,
                UpstreamAlert.failures_key == key,
            )
        ).scalar_one_or_none()
        if alert is not None and alert.last_run_id >= run.id:
            continue
        if alert is None:
            alert = UpstreamAlert(
                upstream=upstream,
                build_sha256=build.sha256,
                build_filename=build.filename,
                build_version=build.version,
                downstream=run.downstream,
                failures_key=key,
                failures=list(run.failures),
                state="open",
                runs=0,
                first_seen=run.tested_at,
                deliveries={},
            )
            session.add(alert)
        alert.runs += 1
        alert.last_run_id = run.id
        alert.last_seen = max(alert.last_seen or run.tested_at, run.tested_at)
        alert.run_url = own_link(run.run_url, repositories.get(run.downstream))
        if alert.state == "resolved":  # failing again with the same build and failures
            alert.state, alert.resolved_at = "open", None
        changed += 1
    session.flush()
    return changed


def _resolve(session: Session, now: datetime) -> int:
    """Open alerts whose downstream passed since with a newer build of the upstream."""
    resolved = 0
    for alert in session.execute(
        select(UpstreamAlert).where(UpstreamAlert.state == "open")
    ).scalars():
        build_time = session.execute(
            select(CompatNightly.uploaded_at)
            .where(CompatNightly.sha256 == alert.build_sha256)
            .limit(1)
        ).scalar_one_or_none()
        passing = session.execute(
            select(CompatRun.id)
            .join(CompatNightly, CompatNightly.run_id == CompatRun.id)
            .where(
                CompatRun.downstream == alert.downstream,
                CompatRun.outcome == "passed",
                CompatRun.id > alert.last_run_id,
                CompatNightly.project == alert.upstream,
                CompatNightly.sha256 != alert.build_sha256,
                *([CompatNightly.uploaded_at > build_time] if build_time is not None else []),
            )
            .limit(1)
        ).scalar_one_or_none()
        if passing is not None:
            alert.state, alert.resolved_at = "resolved", now
            resolved += 1
    return resolved


@dataclass
class AlertsResult:
    opened_or_updated: int = 0
    resolved: int = 0
    deliveries: list[str] = field(default_factory=list)  # "channel 3: opened alert 5 (sent)"
    errors: list[str] = field(default_factory=list)


def _due(alert: UpstreamAlert, channel_id: int) -> str | None:
    """The action a channel has not been told yet: opened, updated or resolved."""
    told = (alert.deliveries or {}).get(str(channel_id))
    if told is None:
        return "opened" if alert.state == "open" else None  # resolved before anyone knew
    if told.get("state") != alert.state:
        return "resolved" if alert.state == "resolved" else "opened"
    if alert.state == "open" and told.get("runs", 0) < alert.runs:
        return "updated"
    return None


def run_alerts(
    services: Services,
    actor: Actor,
    senders: dict[str, Sender],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AlertsResult:
    """One round: scan, resolve, deliver (see the module docstring)."""
    now = now or clock()
    result = AlertsResult()
    with services.db.write() as session:
        result.opened_or_updated = _scan(session, now)
        result.resolved = _resolve(session, now)
    with services.db.read() as session:
        channels = [
            (row, project)
            for row, project in session.execute(
                select(AlertChannel, Project.name).join(
                    Project, Project.id == AlertChannel.project_id
                )
            ).all()
        ]
        session.expunge_all()
    by_project: dict[str, list[AlertChannel]] = {}
    for channel, project in channels:
        by_project.setdefault(project, []).append(channel)
    for project, its_channels in by_project.items():
        rows, known = _project_alerts(services, project)  # once for all its channels
        for channel in its_channels:
            _deliver(services, actor, senders, channel, project, rows, known, now, dry_run, result)
    return result


def _project_alerts(services: Services, project: str) -> tuple[list[UpstreamAlert], dict[str, str]]:
    """An upstream's alerts, and the known-bad reasons of their builds (by sha256). Read
    once per round: a delivery changes only its own channel's entry of ``deliveries``, which
    no other channel reads, and ``_remember`` merges into the row as it is then."""
    with services.db.read() as session:
        rows = list(
            session.execute(
                select(UpstreamAlert).where(UpstreamAlert.upstream == project)
            ).scalars()
        )
        marks = known_bad_by_sha256(session, {row.build_sha256 for row in rows})
        session.expunge_all()
    return rows, {sha: mark.reason for sha, mark in marks.items()}


def _deliver(
    services: Services,
    actor: Actor,
    senders: dict[str, Sender],
    channel: AlertChannel,
    project: str,
    rows: list[UpstreamAlert],
    known: dict[str, str],
    now: datetime,
    dry_run: bool,
    result: AlertsResult,
) -> None:
    info = _info(project, channel)
    sender = senders.get(channel.kind)
    due = [(row, action) for row in rows if (action := _due(row, channel.id)) is not None]
    if not due:
        return
    if channel.digest and channel.kind != "github":  # an issue is per alert
        last = max(
            (
                datetime.fromisoformat(d["at"])
                for row in rows
                if (d := (row.deliveries or {}).get(str(channel.id)))
            ),
            default=None,
        )
        if last is not None and now - last < DIGEST_EVERY:
            return
        batches = [([row for row, _ in due], "digest")]
    else:
        batches = [([row], action) for row, action in due]
    for batch, action in batches:
        alerts = [_alert(row, known) for row in batch]
        ref = (
            (batch[0].deliveries or {}).get(str(channel.id), {}).get("ref")
            if len(batch) == 1
            else None
        )
        what = (
            f"channel {channel.id} ({channel.kind}): {action} alert{'s' if len(batch) > 1 else ''} "
            + ", ".join(str(a.id) for a in alerts)
        )
        if dry_run:
            result.deliveries.append(f"{what} (dry run: not sent)")
            status = "dry-run"
        elif sender is None:
            result.errors.append(f"{what}: no sender for {channel.kind} on this server")
            continue
        else:
            try:
                ref = sender.send(info, channel.secret, alerts, action, ref)
            except Exception as exc:  # one channel's failure never stops the others
                result.errors.append(f"{what}: {exc}")
                continue
            result.deliveries.append(f"{what} (sent)")
            status = "sent"
        _remember(services, actor, channel.id, project, batch, action, status, ref, now, dry_run)


def _remember(
    services: Services,
    actor: Actor,
    channel_id: int,
    project: str,
    batch: list[UpstreamAlert],
    action: str,
    status: str,
    ref: str | None,
    now: datetime,
    dry_run: bool,
) -> None:
    with services.db.write() as session:
        for row in batch:
            if not dry_run:
                current = session.get(UpstreamAlert, row.id)
                assert current is not None
                deliveries = dict(current.deliveries or {})
                deliveries[str(channel_id)] = {
                    "at": now.isoformat(),
                    "state": current.state,
                    "runs": current.runs,
                    "ref": ref,
                }
                current.deliveries = deliveries
            audit.record(
                session, actor, "alert.deliver", project=project, target=row.downstream,
                channel=channel_id, what=action, alert=row.id, status=status,
            )  # fmt: skip
