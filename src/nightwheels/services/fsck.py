"""Consistency check of the index against its blob store, with safe repairs.

Findings, and what ``repair`` does about each:
- ``missing-blob``: a listed file whose bytes are gone. The row is unlisted
  (``removed_reason='lost'``): a link that cannot be served makes pip fail instead of
  choosing another file. The bytes cannot be recovered here.
- ``corrupt-blob``: bytes that do not match their digest. Moved to ``<data>/quarantine``
  (local store) and any listed row is unlisted as for a missing blob.
- ``missing-metadata``: the PEP 658 metadata of a file is gone; it is extracted again
  from the wheel and stored if its digest matches.
- ``missing-history-blob``: an unlisted (history) row whose bytes are gone: reported only.
- ``orphan-blob``: bytes no row refers to, left by a crash between storing and recording
  an upload, idle for the gc grace period: deleted. Younger ones are ``recent-orphan``
  (maybe an upload in flight): reported, not a problem.
- ``interrupted-gc``: a blob a killed collection had moved aside: put back.
- ``incomplete-upload``: an object store's multipart upload that was never completed (a
  process killed mid-upload, or an abort that failed while the store was down); its parts
  are billed. Aborted when older than ``tmp_age``; younger ones are ``in-progress``.
- ``temp-file``: a staged upload (``<data>/tmp``) or a partial copy in the store, left by
  a crash. Deleted when older than ``tmp_age`` (a running upload writes continuously).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nightwheels.core.dists import inspect_distribution
from nightwheels.core.filenames import parse_filename
from nightwheels.db.models import File, Project, utcnow
from nightwheels.db.queries import LIVE
from nightwheels.errors import NightwheelsError
from nightwheels.services import audit, serials
from nightwheels.services.audit import Actor
from nightwheels.services.context import Services
from nightwheels.services.gc import (
    blob_cutoff,
    blob_modified,
    delete_if_idle,
    recover_interrupted,
)
from nightwheels.storage.base import blob_key, digest_from_key
from nightwheels.storage.staging import write_bytes_staged

DEFAULT_TMP_AGE = 3600.0  # seconds
GC_ASIDE_AGE = 60.0
# Findings that describe work in progress, not damage.
NOT_PROBLEMS = frozenset({"in-progress", "recent-orphan"})


@dataclass
class Finding:
    kind: str
    subject: str  # blob key, filename or path
    detail: str
    listed: bool = False  # the index lists the affected file right now
    repaired: str | None = None

    @property
    def open(self) -> bool:
        return self.repaired is None


@dataclass
class FsckReport:
    findings: list[Finding] = field(default_factory=list)
    rows: int = 0
    blobs: int = 0
    verified: int = 0

    @property
    def unservable(self) -> list[Finding]:
        """Listed files the index cannot serve correctly (after repairs)."""
        return [f for f in self.findings if f.listed and f.open]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.open and f.kind not in NOT_PROBLEMS]


@dataclass(frozen=True)
class _Row:
    id: int
    project: str
    project_id: int
    filename: str
    sha256: str
    metadata_sha256: str | None
    live: bool
    removed_reason: str | None


def _rows(session: Session) -> list[_Row]:
    query = select(
        File.id,
        Project.name,
        File.project_id,
        File.filename,
        File.sha256,
        File.metadata_sha256,
        LIVE,
        File.removed_reason,
    ).join(Project, Project.id == File.project_id)
    return [_Row(*r) for r in session.execute(query)]


def _sha256_of(services: Services, key: str) -> str:
    h = hashlib.sha256()
    for chunk in services.store.iter_chunks(key):
        h.update(chunk)
    return h.hexdigest()


def _unlist(services: Services, actor: Actor, rows: list[_Row], why: str) -> None:
    """Take rows off the simple pages (their bytes are unusable)."""
    by_project: dict[int, list[_Row]] = {}
    for r in rows:
        if r.live:
            by_project.setdefault(r.project_id, []).append(r)
    for project_id, affected in by_project.items():

        def run(
            session: Session,
            changes: serials.Changes,
            project_id: int = project_id,
            affected: list[_Row] = affected,
        ) -> None:
            session.execute(
                update(File)
                .where(File.id.in_([r.id for r in affected]), LIVE)
                .values(removed_at=utcnow(), removed_reason="lost"),
                execution_options={"synchronize_session": False},
            )
            project = session.get(Project, project_id)
            assert project is not None
            for r in affected:
                audit.record(
                    session, actor, "file.lost", project=r.project, target=r.filename, reason=why
                )
            changes.bump(project)

        serials.write(services, run)


def _restore_metadata(services: Services, row: _Row) -> str | None:
    """Extract a wheel's METADATA again; store it if it has the recorded digest."""
    store = services.store
    key = blob_key(row.sha256)
    path = store.local_path(key)
    tmp: Path | None = None
    try:
        if path is None:
            staged = write_bytes_staged(services.settings.tmp_dir, store.read_bytes(key))
            assert staged.path is not None  # written to disk
            tmp = path = staged.path
        meta = inspect_distribution(path, parse_filename(row.filename))
        if hashlib.sha256(meta.raw).hexdigest() != row.metadata_sha256:
            return None
        store.put_bytes(blob_key(row.metadata_sha256), meta.raw)
        return "extracted again from the wheel"
    except (NightwheelsError, OSError):
        return None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def _quarantine(services: Services, key: str) -> str | None:
    path = services.store.local_path(key)
    if path is None or not path.is_file():
        return None
    target_dir = services.settings.data / "quarantine"
    target_dir.mkdir(parents=True, exist_ok=True)
    os.replace(path, target_dir / Path(key).name)
    return f"moved to {target_dir}"


def _temp_files(services: Services, report: FsckReport, repair: bool, tmp_age: float) -> None:
    candidates: list[Path] = []
    tmp_dir = services.settings.tmp_dir
    if tmp_dir.is_dir():
        candidates += [p for p in tmp_dir.iterdir() if p.is_file()]
    leftovers = getattr(services.store, "leftovers", None)
    store_leftovers = list(leftovers()) if leftovers is not None else []
    now = time.time()
    for path in candidates + [p for p in store_leftovers if not p.name.endswith(".gc")]:
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:
            continue  # consumed meanwhile
        if age < tmp_age:
            report.findings.append(
                Finding("in-progress", str(path), f"written {age:.0f} s ago; may be in use")
            )
            continue
        finding = Finding("temp-file", str(path), f"left by an interrupted write {age:.0f} s ago")
        if repair:
            path.unlink(missing_ok=True)
            finding.repaired = "deleted"
        report.findings.append(finding)
    for path in store_leftovers:
        if not path.name.endswith(".gc"):
            continue
        try:
            age = now - path.stat().st_ctime
        except FileNotFoundError:
            continue
        if age < min(GC_ASIDE_AGE, tmp_age):
            report.findings.append(Finding("in-progress", str(path), "a collection is running"))
            continue
        finding = Finding("interrupted-gc", str(path), "a blob moved aside by a killed collection")
        if repair:
            recover_interrupted(services.store, min_age=min(GC_ASIDE_AGE, tmp_age))
            finding.repaired = "put back"
        report.findings.append(finding)


def _incomplete_uploads(
    services: Services, report: FsckReport, repair: bool, tmp_age: float
) -> None:
    listing = getattr(services.store, "incomplete_uploads", None)
    if listing is None:
        return
    now = utcnow()
    for name, upload_id, started in list(listing()):
        age = (now - started).total_seconds()
        if age < tmp_age:
            report.findings.append(
                Finding("in-progress", name, f"a multipart upload started {age:.0f} s ago")
            )
            continue
        finding = Finding(
            "incomplete-upload",
            name,
            f"a multipart upload started {started:%Y-%m-%d %H:%M} UTC was never completed; "
            "its parts are billed until it is aborted",
        )
        if repair:
            services.store.abort_upload(name, upload_id)  # type: ignore[attr-defined]
            finding.repaired = "aborted"
        report.findings.append(finding)


def fsck(
    services: Services,
    actor: Actor,
    *,
    repair: bool = False,
    verify: bool = True,
    tmp_age: float = DEFAULT_TMP_AGE,
    now: datetime | None = None,
) -> FsckReport:
    report = FsckReport()
    store = services.store
    # Rows first, then keys: a blob stored after the row snapshot shows as an orphan (and is
    # spared by the grace period), never as a row without a blob.
    _temp_files(services, report, repair, tmp_age)
    _incomplete_uploads(services, report, repair, tmp_age)
    with services.db.read() as session:
        rows = _rows(session)
    report.rows = len(rows)
    keys = set(store.iter_keys())
    report.blobs = len(keys)
    by_digest: dict[str, list[_Row]] = {}
    for r in rows:
        by_digest.setdefault(r.sha256, []).append(r)
    metadata_digests = {r.metadata_sha256 for r in rows if r.metadata_sha256}

    # Rows without bytes.
    lost: list[_Row] = []
    for digest, refs in sorted(by_digest.items()):
        key = blob_key(digest)
        if key in keys or store.exists(key):
            continue
        for r in refs:
            if r.live:
                lost.append(r)
                report.findings.append(
                    Finding("missing-blob", r.filename, f"{r.project}: bytes {key} are gone", True)
                )
            elif r.removed_reason == "lost":
                pass  # unlisted by an earlier repair: known, nothing left to do
            else:
                report.findings.append(
                    Finding("missing-history-blob", r.filename, f"{r.project}: {key} is gone")
                )
    for r in rows:
        if not r.metadata_sha256:
            continue
        key = blob_key(r.metadata_sha256)
        if key in keys or store.exists(key):
            continue
        finding = Finding(
            "missing-metadata", r.filename, f"{r.project}: metadata {key} is gone", r.live
        )
        if repair and blob_key(r.sha256) in keys:
            finding.repaired = _restore_metadata(services, r)
            if finding.repaired:
                keys.add(key)
        report.findings.append(finding)

    # Bytes without rows, and bytes that do not match their name.
    cutoff = blob_cutoff(services, now or utcnow())
    corrupt: list[_Row] = []
    for key in sorted(keys):
        digest = digest_from_key(key)
        if digest is None:
            continue
        referenced = digest in by_digest or digest in metadata_digests
        if not referenced:
            modified = blob_modified(store, key)
            if modified is None or modified > cutoff:
                report.findings.append(
                    Finding(
                        "recent-orphan",
                        key,
                        "no file refers to these bytes (yet): within "
                        "the grace period, maybe an upload in flight",
                    )
                )
                continue
            finding = Finding("orphan-blob", key, "no file refers to these bytes")
            if repair and delete_if_idle(store, key, cutoff):
                finding.repaired = "deleted"
            report.findings.append(finding)
            continue
        if not verify:
            continue
        try:
            actual = _sha256_of(services, key)
        except FileNotFoundError:
            continue  # collected meanwhile
        report.verified += 1
        if actual == digest:
            continue
        refs = by_digest.get(digest, [])
        meta_refs = [r for r in rows if r.metadata_sha256 == digest]
        listed = any(r.live for r in refs + meta_refs)
        finding = Finding("corrupt-blob", key, f"content has sha256 {actual}", listed)
        if repair:
            moved = _quarantine(services, key) or "left in place"
            if refs:
                corrupt += refs
                finding.repaired = f"{moved}; its files unlisted"
            elif meta_refs:
                if not services.store.exists(key):
                    restored = _restore_metadata(services, meta_refs[0])
                    finding.repaired = f"{moved}; {restored}" if restored else None
            else:
                finding.repaired = moved
        report.findings.append(finding)

    if repair and (lost or corrupt):
        _unlist(services, actor, lost, "bytes missing")
        _unlist(services, actor, corrupt, "bytes corrupt")
        for f in report.findings:
            if f.kind == "missing-blob" and f.repaired is None:
                f.repaired = "unlisted (removed_reason 'lost')"
    return report
