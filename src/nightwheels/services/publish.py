"""Publishing a distribution: the one place where an upload is validated and recorded.

Order matters: permission before content (no oracle for outsiders), content before
storage, blob committed before the row that points at it (a row never names a missing
blob), and the row change plus serial bump in one transaction.

A batch (:func:`publish_many`) takes the same steps, each file answered on its own; a
single upload (:func:`publish`) is a batch of one.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from packaging.version import InvalidVersion, Version
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightwheels.core.dists import DistMetadata, inspect_distribution
from nightwheels.core.filenames import DistFilename, parse_filename
from nightwheels.core.names import DEFAULT_LABEL, normalize_name, validate_label
from nightwheels.core.permissions import Role
from nightwheels.core.project_status import accepts_uploads
from nightwheels.db.models import File, PendingFile, Project, UploadSession, User, utcnow
from nightwheels.db.queries import LIVE
from nightwheels.errors import (
    Conflict,
    DigestMismatch,
    DistributionNotAllowed,
    FileExists,
    InvalidRequest,
    NightwheelsError,
    NotFound,
    ProjectClosed,
    QuotaExceeded,
)
from nightwheels.errors import (
    InvalidVersion as InvalidVersionError,
)
from nightwheels.services import audit, serials
from nightwheels.services.accounts import get_or_create_project, set_role
from nightwheels.services.auth import Principal, require_upload
from nightwheels.services.context import Services
from nightwheels.storage.base import blob_key
from nightwheels.storage.staging import StagedFile

Outcome = Literal["uploaded", "replaced", "unchanged"]

# The statements of the record transaction: plain SQL on the files table rather than ORM
# objects (a unit-of-work flush costs more than the rest of the transaction), built once
# (building a statement and its cache key costs more than running it).
_files = File.__table__
_LIVE_FILES = select(
    _files.c.id,
    _files.c.filename,
    _files.c.label,
    _files.c.sha256,
    _files.c.version_key,
    _files.c.tag_key,
).where(
    _files.c.project_id == bindparam("project_id"),
    _files.c.label.in_(bindparam("labels", expanding=True)),
    _files.c.version_key.in_(bindparam("versions", expanding=True)),
    LIVE,
)
_LOCK_PROJECT = (
    select(Project.__table__.c.id)
    .where(Project.__table__.c.id == bindparam("project_id"))
    .with_for_update()
)
_REMOVE_FILE = (
    update(_files)
    .where(_files.c.id == bindparam("file_id"))
    .values(removed_at=bindparam("removed_at"), removed_reason=bindparam("reason"))
)
_INSERT_FILE = insert(_files)


@dataclass(frozen=True)
class UploadRequest:
    """The form fields of a legacy upload that the index uses."""

    filename: str
    name: str
    version: str
    filetype: str | None = None
    sha256_digest: str | None = None
    md5_digest: str | None = None
    blake2_256_digest: str | None = None
    labels: tuple[str, ...] = (DEFAULT_LABEL,)
    # When the file was first published elsewhere (a mirror keeps PEP 700 upload times).
    # Only trusted in-process callers set it; the HTTP edges never do.
    uploaded_at: datetime | None = None


@dataclass
class PublishResult:
    project: str
    filename: str
    version: str
    sha256: str
    size: int
    outcome: Outcome
    labels: dict[str, Outcome] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _check_form(request: UploadRequest, dist: DistFilename) -> None:
    if not request.name:
        raise InvalidRequest("the 'name' field is missing")
    if normalize_name(request.name) != dist.name:
        raise InvalidRequest(
            f"the form names project {request.name!r} but the file is for {dist.name!r}"
        )
    try:
        form_version = Version(request.version)
    except InvalidVersion:
        raise InvalidVersionError(f"{request.version!r} is not a valid version (PEP 440)") from None
    if form_version != dist.version:
        raise InvalidRequest(
            f"the form says version {request.version} but the filename says {dist.version}"
        )
    expected_type = "bdist_wheel" if dist.packagetype == "bdist_wheel" else "sdist"
    if request.filetype and request.filetype != expected_type:
        raise InvalidRequest(f"filetype {request.filetype!r} does not match {dist.filename!r}")


def _check_digests(request: UploadRequest, staged: StagedFile) -> None:
    checks = [
        ("sha256", request.sha256_digest, staged.sha256),
        ("blake2_256", request.blake2_256_digest, staged.blake2_256),
        ("md5", request.md5_digest, staged.md5),
    ]
    given = [(n, d.strip().lower(), actual) for n, d, actual in checks if d and d.strip()]
    if not given:
        raise InvalidRequest("the upload carries no digest: send sha256_digest")
    for algorithm, declared, actual in given:
        if declared != actual:
            raise DigestMismatch(
                f"{algorithm} digest mismatch: the form says {declared} but the received "
                f"file has {actual}; the upload was corrupted or truncated, retry it"
            )


def _check_open(project: Project | None) -> None:
    """PEP 792: archived and quarantined projects take no uploads."""
    if project is not None and not accepts_uploads(project.status):
        reason = f" ({project.status_reason})" if project.status_reason else ""
        raise ProjectClosed(
            f"project {project.name!r} is {project.status}{reason} and accepts no uploads; "
            "a project admin can set it active again"
        )


def _allow_replace(services: Services, project: Project | None) -> bool:
    if project is not None and project.allow_replace is not None:
        return project.allow_replace
    return services.settings.allow_replace


def _used_bytes(session: Session, project: Project) -> int:
    return session.execute(
        select(func.coalesce(func.sum(File.size), 0)).where(File.project_id == project.id, LIVE)
    ).scalar_one()


def _over_quota(project: Project, used: int, size: int) -> QuotaExceeded | None:
    if project.quota_bytes is None or used + size <= project.quota_bytes:
        return None
    return QuotaExceeded(
        f"project {project.name!r} would use {used + size} bytes, over its quota of "
        f"{project.quota_bytes} bytes: remove old files or ask an admin to raise the quota"
    )


@dataclass
class _Item:
    """One file of an upload, as it goes through the checks."""

    index: int  # its place in the request
    request: UploadRequest
    staged: StagedFile
    dist: DistFilename
    labels: tuple[str, ...]
    meta: DistMetadata | None = None
    metadata_sha256: str = ""


Failures = dict[int, NightwheelsError]  # item index -> why it was refused


def _quota_failures(session: Session, project: Project, items: list[_Item]) -> Failures:
    """Files that would take ``project`` over its quota, counting the earlier ones in."""
    if project.quota_bytes is None:
        return {}
    used = _used_bytes(session, project)
    failures: Failures = {}
    for item in items:
        error = _over_quota(project, used, item.staged.size)
        if error is not None:
            failures[item.index] = error
        else:
            used += item.staged.size
    return failures


@dataclass(frozen=True)
class _Live:
    """A live file that an upload may meet: same project, label and version."""

    id: int
    filename: str
    sha256: str
    version_key: str
    tag_key: str


LiveFiles = dict[str, list[_Live]]  # label -> live files of the items' versions


def _live_files(session: Session, project_id: int, items: list[_Item]) -> LiveFiles:
    """The live files of these items' labels and versions, by label."""
    rows = session.execute(
        _LIVE_FILES,
        {
            "project_id": project_id,
            "labels": sorted({label for item in items for label in item.labels}),
            "versions": sorted({item.dist.version_key for item in items}),
        },
    )
    live: LiveFiles = {}
    for file_id, filename, label, sha256, version_key, tag_key in rows:
        live.setdefault(label, []).append(_Live(file_id, filename, sha256, version_key, tag_key))
    return live


def _same_identity(live: LiveFiles, dist: DistFilename, label: str) -> list[_Live]:
    """The live files that ``dist`` would replace: same version, some tag in common."""
    return [f for f in live.get(label, []) if dist.overlaps(f.version_key, f.tag_key)]


def _unchanged(found: list[_Live], item: _Item) -> bool:
    return [(f.filename, f.sha256) for f in found] == [(item.dist.filename, item.staged.sha256)]


def _exists_error(found: list[_Live], dist: DistFilename, label: str) -> FileExists:
    what = "source distribution" if dist.packagetype == "sdist" else f"{dist.tag_key} wheel"
    return FileExists(
        f"{found[0].filename} is already the {what} of version {dist.version} in label "
        f"{label!r}, and this index does not allow replacing files: upload a new version "
        f"({dist.filename} names the same version and tags)"
    )


def _precheck(
    session: Session, services: Services, project: Project | None, items: list[_Item]
) -> Failures:
    """Refuse what would be refused at record time, before any byte is committed."""
    if project is None:
        return {}
    failures = _quota_failures(session, project, items)
    if _allow_replace(services, project):
        return failures
    live = _live_files(session, project.id, items)
    for item in items:
        for label in item.labels:
            found = _same_identity(live, item.dist, label)
            if found and not _unchanged(found, item):
                failures.setdefault(item.index, _exists_error(found, item.dist, label))
    return failures


@dataclass
class _Recorded:
    project: str
    serial: int | None
    outcomes: dict[int, dict[str, Outcome]]
    failures: Failures


def _record(
    session: Session,
    services: Services,
    principal: Principal,
    name: str,
    items: list[_Item],
) -> _Recorded:
    """Record the files of one project in the caller's transaction; one serial bump."""
    # Uploads to one project decide one after the other (PostgreSQL: a row lock, taken by
    # the permission check's statement; SQLite writers are serialised already), so two can
    # never both find an identity free.
    project = require_upload(session, principal, name, lock=True)
    _check_open(project)
    if project is None:  # a site admin's first upload creates the listing
        assert items[0].meta is not None
        project = get_or_create_project(session, principal.actor, items[0].meta.name)
        user = session.get(User, principal.user_id)
        assert user is not None
        set_role(session, principal.actor, user, project, Role.ADMIN)
        session.flush()
        session.execute(_LOCK_PROJECT, {"project_id": project.id})  # another may have made it
    failures = _quota_failures(session, project, items)
    live = _live_files(session, project.id, items)
    replace = _allow_replace(services, project)
    now = utcnow()
    outcomes: dict[int, dict[str, Outcome]] = {}
    rows: list[dict[str, object]] = []
    for item in items:
        if item.index in failures:
            continue
        filename = item.dist.filename
        existing = {label: _same_identity(live, item.dist, label) for label in item.labels}
        # Decide every label before writing any, so a refusal leaves nothing half-done.
        clash = [
            label
            for label, found in existing.items()
            if found and not _unchanged(found, item) and not replace
        ]
        if clash:
            failures[item.index] = _exists_error(existing[clash[0]], item.dist, clash[0])
            continue
        outcomes[item.index] = {}
        for label, found in existing.items():
            if found and _unchanged(found, item):
                outcomes[item.index][label] = "unchanged"
                continue
            for old in found:  # free the identity (and filename) before the insert
                session.execute(
                    _REMOVE_FILE, {"file_id": old.id, "removed_at": now, "reason": "replaced"}
                )
            assert item.meta is not None
            rows.append(
                {
                    "project_id": project.id,
                    "label": label,
                    "filename": filename,
                    "version": str(item.dist.version),
                    "version_key": item.dist.version_key,
                    "tag_key": item.dist.tag_key,
                    "packagetype": item.dist.packagetype,
                    "sha256": item.staged.sha256,
                    "size": item.staged.size,
                    "requires_python": item.meta.requires_python,
                    "metadata_sha256": item.metadata_sha256,
                    "uploaded_at": item.request.uploaded_at or now,  # a mirror keeps PEP 700 times
                    "uploader_id": principal.user_id,
                }
            )
            outcomes[item.index][label] = "replaced" if found else "uploaded"
            audit.record(
                session,
                principal.actor,
                f"file.{'replace' if found else 'upload'}",
                project=project.name,
                target=filename,
                label=label,
                sha256=item.staged.sha256,
                previous_sha256=found[0].sha256 if found else None,
                replaced=[old.filename for old in found] or None,
                token=principal.token_name,
            )
    if rows:
        session.execute(_INSERT_FILE, rows)
    times = [row["uploaded_at"] for row in rows]
    serial = serials.bump(session, project, uploads=times, locked=True) if rows else None  # type: ignore[arg-type]
    return _Recorded(project.name, serial, outcomes, failures)


RACE_ATTEMPTS = 5


def _record_racing(services: Services, record: Callable[[Session], _Recorded]) -> _Recorded:
    """Record, deciding again when a concurrent upload of the same file committed first.

    The partial unique indexes ``uq_files_live`` (filename) and ``uq_files_identity``
    (version and tags) make the loser's insert fail; the retry sees the winner's row and
    replaces it (or finds the same bytes: unchanged, or refuses where replacing is off).
    """
    for attempt in range(RACE_ATTEMPTS):
        try:
            return services.db.run_write(record)
        except IntegrityError:
            if attempt == RACE_ATTEMPTS - 1:
                break
    raise Conflict("other uploads of this file kept committing first: retry the upload")


def _open_session(session: Session, public_id: str, project: Project) -> UploadSession:
    """The open upload session ``public_id`` of ``project``, locked for this transaction."""
    found = session.execute(
        select(UploadSession).where(UploadSession.public_id == public_id).with_for_update()
    ).scalar_one_or_none()
    if found is None or found.project_id != project.id:
        raise NotFound(f"project {project.name!r} has no upload session {public_id!r}")
    if found.state == "open" and found.expires_at <= utcnow():
        raise Conflict(
            f"upload session {found.name!r} expired at {found.expires_at:%Y-%m-%d %H:%M} UTC"
        )
    if found.state != "open":
        raise Conflict(f"upload session {found.name!r} is {found.state}: open a new one")
    return found


def _record_pending(
    session: Session,
    services: Services,
    principal: Principal,
    name: str,
    items: list[_Item],
    *,
    upload_session: str,
) -> _Recorded:
    """Record the files of one project into an open upload session: stored, not listed.

    Within a session the last upload of a filename wins (a re-run matrix job); nothing
    becomes visible, so no serial moves.
    """
    project = require_upload(session, principal, name)
    if project is None:
        raise NotFound(f"no project named {name!r}: upload sessions publish to existing projects")
    target = _open_session(session, upload_session, project)
    failures = _quota_failures(session, project, items)
    pending = {
        row.filename: row
        for row in session.execute(
            select(PendingFile).where(PendingFile.session_id == target.id)
        ).scalars()
    }
    outcomes: dict[int, dict[str, Outcome]] = {}
    for item in items:
        if item.index in failures:
            continue
        assert item.meta is not None
        found = pending.get(item.dist.filename)
        if found is not None and found.sha256 == item.staged.sha256:
            outcomes[item.index] = {target.label: "unchanged"}
            continue
        for other in list(pending.values()):  # another spelling of this file: this one wins
            dist = parse_filename(other.filename)
            if other is not found and item.dist.overlaps(dist.version_key, dist.tag_key):
                session.delete(other)
                del pending[other.filename]
        row = found or PendingFile(session_id=target.id, filename=item.dist.filename)
        row.display_name = item.meta.name
        row.version = str(item.dist.version)
        row.packagetype = item.dist.packagetype
        row.sha256 = item.staged.sha256
        row.size = item.staged.size
        row.requires_python = item.meta.requires_python
        row.metadata_sha256 = item.metadata_sha256
        row.uploaded_at = utcnow()
        row.uploader = principal.user_name
        session.add(row)
        pending[row.filename] = row
        outcomes[item.index] = {target.label: "replaced" if found is not None else "uploaded"}
    session.flush()
    return _Recorded(project.name, None, outcomes, failures)


def publish_pending(
    session: Session, services: Services, principal: Principal, target: UploadSession
) -> int | None:
    """Make a session's files live, in the caller's transaction, by the rules of an upload.

    All or nothing: a file the rules refuse (replacing is off, the quota) refuses the whole
    publish. Answers the project's new serial (``None``: nothing changed).
    """
    rows = list(target.files)
    items = [
        _Item(
            index=index,
            request=UploadRequest(row.filename, row.display_name, row.version),
            staged=StagedFile(None, row.size, row.sha256, md5="", blake2_256=""),
            dist=parse_filename(row.filename),
            labels=(target.label,),
            meta=DistMetadata(
                raw=b"",
                name=row.display_name,
                version=Version(row.version),
                metadata_version="",
                requires_python=row.requires_python,
            ),
            metadata_sha256=row.metadata_sha256 or "",
        )
        for index, row in enumerate(rows)
    ]
    if not items:
        return None
    for position, item in enumerate(items):
        try:
            _check_not_twice(item, items[:position])
        except InvalidRequest as exc:
            raise Conflict(f"upload session {target.name!r} was not published: {exc}") from None
    done = _record(session, services, principal, target.project.name, items)
    if done.failures:
        index, error = sorted(done.failures.items())[0]
        raise Conflict(
            f"upload session {target.name!r} was not published: {rows[index].filename}: "
            f"{error.message}"
        )
    return done.serial


def _checked_form(
    services: Services, index: int, request: UploadRequest, staged: StagedFile
) -> _Item:
    dist = parse_filename(request.filename)
    labels = tuple(dict.fromkeys(validate_label(label) for label in request.labels)) or (
        DEFAULT_LABEL,
    )
    _check_form(request, dist)
    if dist.packagetype == "sdist" and not services.settings.allow_sdist:
        raise DistributionNotAllowed(
            "this index accepts wheels only: source distributions make pip and uv build "
            "from source; upload wheels (the server setting allow_sdist enables sdists)"
        )
    return _Item(index, request, staged, dist, labels)


def _check_not_twice(item: _Item, earlier: list[_Item]) -> None:
    """One request may not carry two files of one identity (which would win is arbitrary)."""
    dist = item.dist
    for other in earlier:
        if other.dist.overlaps(dist.version_key, dist.tag_key):
            if other.dist.filename == dist.filename:
                raise InvalidRequest(f"{dist.filename} appears twice in this upload")
            raise InvalidRequest(
                f"{dist.filename} and {other.dist.filename} are the same version and tags: "
                "upload one of them"
            )


def _store(services: Services, item: _Item) -> None:
    """Commit a file's metadata and bytes to the blob store (before any row names them)."""
    assert item.meta is not None
    item.metadata_sha256 = hashlib.sha256(item.meta.raw).hexdigest()
    services.store.put_bytes(blob_key(item.metadata_sha256), item.meta.raw)
    staged = item.staged
    if staged.data is not None:
        services.store.put_bytes(blob_key(staged.sha256), staged.data)
    else:
        assert staged.path is not None
        services.store.put_file(blob_key(staged.sha256), staged.path)


STORE_THREADS = 8
_store_pool: ThreadPoolExecutor | None = None
_store_pool_lock = threading.Lock()


def _store_all(services: Services, items: list[_Item]) -> None:
    """Store the files of a batch side by side: each waits on its disk sync or its
    object-store round trip, not on the CPU. The first failure is raised once all are
    done, so no store call outlives the request."""
    global _store_pool
    if len(items) <= 1:
        for item in items:
            _store(services, item)
        return
    with _store_pool_lock:
        if _store_pool is None:
            _store_pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="blob-store")
        pool = _store_pool
    futures = [pool.submit(_store, services, item) for item in items]
    errors = [exc for future in futures if (exc := future.exception()) is not None]
    if errors:
        raise errors[0]


def _overall(outcomes: dict[str, Outcome]) -> Outcome:
    values = set(outcomes.values())
    return (
        "replaced" if "replaced" in values else "uploaded" if "uploaded" in values else "unchanged"
    )


Upload = tuple[UploadRequest, StagedFile]
PublishOutcome = PublishResult | NightwheelsError


def publish_many(
    services: Services,
    principal: Principal,
    uploads: Sequence[Upload],
    *,
    upload_session: str | None = None,
) -> list[PublishOutcome]:
    """Validate and record several uploads; each succeeds or fails on its own.

    One answer per upload, in order: its result, or the error that refused it. Files of
    one project are recorded in one transaction with one serial bump, which is what
    makes a batch cheaper than as many single uploads. Every ``staged`` file is consumed
    (committed or removed). Errors that are not a refusal of some files (a database or
    storage failure) propagate and fail the request; files of projects recorded before
    it are then found unchanged when the request is retried.

    With ``upload_session`` (a session's public id) the files go into that open session
    instead, listed nowhere until it is published (:func:`publish_pending`).
    """
    answers: list[PublishOutcome | None] = [None] * len(uploads)
    recorded: list[_Recorded] = []

    def refuse(failures: Failures) -> None:
        for index, error in failures.items():
            answers[index] = error

    def keep(items: list[_Item]) -> list[_Item]:
        return [item for item in items if answers[item.index] is None]

    try:
        by_project: dict[str, list[_Item]] = {}
        for index, (request, staged) in enumerate(uploads):
            try:
                item = _checked_form(services, index, request, staged)
                _check_not_twice(item, by_project.get(item.dist.name, []))
            except NightwheelsError as exc:
                answers[index] = exc
                continue
            by_project.setdefault(item.dist.name, []).append(item)
        # Permission first: outsiders learn nothing about validation.
        projects: dict[str, Project | None] = {}
        with services.db.lookup() as session:  # decided again when recorded
            for name, items in by_project.items():
                try:
                    projects[name] = require_upload(session, principal, name)
                    _check_open(projects[name])
                except NightwheelsError as exc:
                    refuse(dict.fromkeys((item.index for item in items), exc))
        for items in by_project.values():
            for item in keep(items):
                try:
                    _check_digests(item.request, item.staged)
                    item.meta = inspect_distribution(item.staged.source(), item.dist)
                except NightwheelsError as exc:
                    answers[item.index] = exc
        with services.db.lookup() as session:
            for name, items in by_project.items():
                if keep(items):
                    refuse(_precheck(session, services, projects[name], keep(items)))
        _store_all(services, [i for items in by_project.values() for i in keep(items)])
        for name, items in by_project.items():
            todo = keep(items)
            if not todo:
                continue
            try:
                record = functools.partial(
                    _record, services=services, principal=principal, name=name, items=todo
                )
                if upload_session is not None:
                    record = functools.partial(
                        _record_pending,
                        services=services,
                        principal=principal,
                        name=name,
                        items=todo,
                        upload_session=upload_session,
                    )
                done = _record_racing(services, record)
            except NightwheelsError as exc:
                refuse(dict.fromkeys((item.index for item in todo), exc))
                continue
            refuse(done.failures)
            recorded.append(done)
    finally:
        for _, staged in uploads:
            staged.discard()
        for done in recorded:  # committed, even if a later project's record failed
            if done.serial is not None:
                services.changed(done.project, done.serial)
    warnings = [w for w in [principal.expiry_warning()] if w]
    items_by_index = {item.index: item for items in by_project.values() for item in items}
    for done in recorded:
        for index, outcomes in done.outcomes.items():
            item = items_by_index[index]
            answers[index] = PublishResult(
                project=done.project,
                filename=item.dist.filename,
                version=str(item.dist.version),
                sha256=item.staged.sha256,
                size=item.staged.size,
                outcome=_overall(outcomes),
                labels=outcomes,
                warnings=warnings,
            )
    assert all(answer is not None for answer in answers)
    return answers  # type: ignore[return-value]


def publish(
    services: Services,
    principal: Principal,
    request: UploadRequest,
    staged: StagedFile,
    *,
    upload_session: str | None = None,
) -> PublishResult:
    """Validate and record one upload (the legacy endpoint). ``staged`` is consumed."""
    (answer,) = publish_many(
        services, principal, [(request, staged)], upload_session=upload_session
    )
    if isinstance(answer, NightwheelsError):
        raise answer
    return answer
