"""Garbage collection: forget removed files after the history window, then delete bytes.

Timeline of a removed (pruned, replaced, deleted) file:
- at removal it leaves the simple pages, and stays downloadable by URL and visible to
  as-of views for ``history_days``;
- after ``history_days + gc_grace_hours`` its row is purged;
- its blob is deleted once no row at all refers to it (as file or as metadata: another
  label, another filename or a re-upload of the same bytes keeps it), and it has not been
  stored or re-stored for ``gc_grace_hours``. That second condition protects an upload
  whose blob is committed but whose row is not yet (see LocalBlobStore.put_file).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from nightwheels.db.models import File, PendingFile, Project, utcnow
from nightwheels.db.queries import LIVE
from nightwheels.services import audit, serials
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services
from nightwheels.storage.base import BlobStore, digest_from_key

log = logging.getLogger(__name__)

PURGE_BATCH = 1000


@dataclass
class GcResult:
    dry_run: bool
    purged_rows: int = 0
    deleted: list[str] = field(default_factory=list)  # blob keys
    freed_bytes: int = 0
    recent: int = 0  # unreferenced blobs kept because they are within the grace period
    recovered: int = 0  # blobs put back after an interrupted collection


def row_cutoff(services: Services, now: datetime) -> datetime:
    settings = services.settings
    return now - timedelta(days=settings.history_days, hours=settings.gc_grace_hours)


def blob_cutoff(services: Services, now: datetime) -> datetime:
    return now - timedelta(hours=services.settings.gc_grace_hours)


def referenced_digests(session: Session, removed_after: datetime | None = None) -> set[str]:
    """Every digest a row refers to (file or metadata); optionally only rows kept after a purge."""
    keep = or_(LIVE, File.removed_at >= removed_after) if removed_after is not None else True
    digests: set[str] = set()
    for column in (File.sha256, File.metadata_sha256):
        digests.update(d for (d,) in session.execute(select(column).where(keep).distinct()) if d)
    # Files of open upload sessions: stored, not yet listed (services/upload_sessions.py).
    for column in (PendingFile.sha256, PendingFile.metadata_sha256):
        digests.update(d for (d,) in session.execute(select(column).distinct()) if d)
    return digests


def blob_modified(store: BlobStore, key: str) -> datetime | None:
    modified = getattr(store, "modified", None)
    return modified(key) if modified is not None else None


def delete_if_idle(store: BlobStore, key: str, cutoff: datetime) -> bool:
    """Delete a blob not (re-)stored since ``cutoff``; stores without times are left alone."""
    method = getattr(store, "delete_if_idle", None)
    if method is not None:
        return bool(method(key, cutoff))
    modified = blob_modified(store, key)
    if modified is None or modified > cutoff:
        return False
    store.delete(key)
    return True


def recover_interrupted(store: BlobStore, min_age: float = 60.0) -> int:
    """Put back blobs a killed collection had moved aside (``.<digest>.<pid>.gc``).

    A collection holds a blob aside for microseconds; one older than ``min_age`` seconds
    (by its change time, which the rename set) belongs to a collection that died.
    """
    leftovers = getattr(store, "leftovers", None)
    if leftovers is None:
        return 0
    recovered = 0
    for path in leftovers():
        if not path.name.endswith(".gc"):
            continue
        try:
            if time.time() - path.stat().st_ctime < min_age:
                continue
        except FileNotFoundError:
            continue
        target = path.with_name(path.name[1:].split(".", 1)[0])
        if target.exists():
            path.unlink(missing_ok=True)
        else:
            os.replace(path, target)  # gc decides again from scratch
            recovered += 1
    return recovered


def _purge_rows(services: Services, actor: Actor, cutoff: datetime) -> int:
    expired = File.removed_at.is_not(None) & (File.removed_at < cutoff)
    total = 0
    while True:

        def run(session: Session, changes: serials.Changes) -> int:
            rows = session.execute(
                select(File.id, Project.name, Project.id)
                .join(Project, Project.id == File.project_id)
                .where(expired)
                .limit(PURGE_BATCH)
            ).all()
            if not rows:
                return 0
            session.execute(
                delete(File).where(File.id.in_([r[0] for r in rows])),
                execution_options={"synchronize_session": False},
            )
            per_project: dict[str, int] = {}
            for _, name, _ in rows:
                per_project[name] = per_project.get(name, 0) + 1
            # The serial bump (which also recomputes history counts and last upload) tells
            # every server's file lookup, through the serial poll, that these URLs are gone.
            projects = session.execute(
                select(Project).where(Project.id.in_({r[2] for r in rows})).order_by(Project.id)
            ).scalars()
            for project in projects:
                changes.bump(project)
            for name, count in sorted(per_project.items()):
                audit.record(session, actor, "files.purge", project=name, count=count)
            return len(rows)

        purged = serials.write(services, run)
        total += purged
        if purged < PURGE_BATCH:
            return total


def collect(
    services: Services, actor: Actor, *, now: datetime | None = None, dry_run: bool = False
) -> GcResult:
    now = now or utcnow()
    result = GcResult(dry_run=dry_run)
    store = services.store
    rows_before = row_cutoff(services, now)
    if dry_run:
        with services.db.read() as session:
            result.purged_rows = session.execute(
                select(func.count(File.id)).where(
                    File.removed_at.is_not(None), File.removed_at < rows_before
                )
            ).scalar_one()
            referenced = referenced_digests(session, removed_after=rows_before)
    else:
        result.recovered = recover_interrupted(store)
        result.purged_rows = _purge_rows(services, actor, rows_before)
        # Rows first, bytes after: read what is referenced only once the purge committed.
        with services.db.read() as session:
            referenced = referenced_digests(session)
    cutoff = blob_cutoff(services, now)
    for key in list(store.iter_keys()):
        digest = digest_from_key(key)
        if digest is None or digest in referenced:
            continue
        size = store.size(key) or 0
        if dry_run:
            modified = blob_modified(store, key)
            idle = modified is not None and modified <= cutoff
        else:
            idle = delete_if_idle(store, key, cutoff)
        if idle:
            result.deleted.append(key)
            result.freed_bytes += size
        else:
            result.recent += 1
    if not dry_run and (result.deleted or result.purged_rows):
        details: dict[str, Any] = {"blobs": len(result.deleted), "bytes": result.freed_bytes}

        def record(session: Session) -> None:
            audit.record(session, actor, "blobs.delete", **details, rows=result.purged_rows)

        services.db.run_write(record)
        log.info(
            "gc: purged %d rows, deleted %d blobs (%d bytes)",
            result.purged_rows,
            len(result.deleted),
            result.freed_bytes,
        )
    return result
