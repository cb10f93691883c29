"""Publishing a distribution: the one place where an upload is validated and recorded.

Order matters: permission before content (no oracle for outsiders), content before
storage, blob committed before the row that points at it (a row never names a missing
blob), and the row change plus serial bump in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightwheels.core.dists import DistMetadata, inspect_distribution
from nightwheels.core.filenames import DistFilename, parse_filename
from nightwheels.core.names import DEFAULT_LABEL, normalize_name, validate_label
from nightwheels.core.permissions import Role
from nightwheels.db.models import File, Project, User, utcnow
from nightwheels.errors import (
    Conflict,
    DigestMismatch,
    DistributionNotAllowed,
    FileExists,
    InvalidRequest,
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
from nightwheels.storage.staging import StagedFile, write_bytes_staged

Outcome = Literal["uploaded", "replaced", "unchanged"]

# The statements of the record transaction: plain SQL on the files table rather than ORM
# objects (a unit-of-work flush costs more than the rest of the transaction), built once
# (building a statement and its cache key costs more than running it).
_files = File.__table__
_LIVE_FILES = select(_files.c.id, _files.c.label, _files.c.sha256).where(
    _files.c.project_id == bindparam("project_id"),
    _files.c.label.in_(bindparam("labels", expanding=True)),
    _files.c.filename == bindparam("filename"),
    _files.c.removed_at.is_(None),
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


def _allow_replace(services: Services, project: Project | None) -> bool:
    if project is not None and project.allow_replace is not None:
        return project.allow_replace
    return services.settings.allow_replace


def _check_quota(session: Session, project: Project | None, size: int) -> None:
    if project is None or project.quota_bytes is None:
        return
    used = session.execute(
        select(func.coalesce(func.sum(File.size), 0)).where(
            File.project_id == project.id, File.removed_at.is_(None)
        )
    ).scalar_one()
    if used + size > project.quota_bytes:
        raise QuotaExceeded(
            f"project {project.name!r} would use {used + size} bytes, over its quota of "
            f"{project.quota_bytes} bytes: remove old files or ask an admin to raise the quota"
        )


def _precheck(
    session: Session,
    services: Services,
    project: Project | None,
    dist: DistFilename,
    staged: StagedFile,
    labels: tuple[str, ...],
) -> None:
    """Refuse what would be refused at record time, before any byte is committed."""
    if project is None:
        return
    _check_quota(session, project, staged.size)
    if _allow_replace(services, project):
        return
    clash = session.execute(
        select(File.label).where(
            File.project_id == project.id,
            File.label.in_(labels),
            File.filename == dist.filename,
            File.removed_at.is_(None),
            File.sha256 != staged.sha256,
        )
    ).first()
    if clash is not None:
        raise FileExists(
            f"{dist.filename} already exists in label {clash[0]!r} and this "
            "index does not allow replacing files: upload a new version"
        )


def _record(
    session: Session,
    services: Services,
    principal: Principal,
    dist: DistFilename,
    meta: DistMetadata,
    staged: StagedFile,
    metadata_sha256: str,
    labels: tuple[str, ...],
) -> tuple[dict[str, Outcome], str, int | None]:
    project = require_upload(session, principal, dist.name)
    if project is None:  # a site admin's first upload creates the listing
        project = get_or_create_project(session, principal.actor, meta.name)
        user = session.get(User, principal.user_id)
        assert user is not None
        set_role(session, principal.actor, user, project, Role.ADMIN)
    _check_quota(session, project, staged.size)
    outcomes: dict[str, Outcome] = {}
    now = utcnow()
    live = {
        label: (file_id, sha256)
        for file_id, label, sha256 in session.execute(
            _LIVE_FILES,
            {"project_id": project.id, "labels": list(labels), "filename": dist.filename},
        )
    }
    for label in labels:
        existing = live.get(label)
        if existing is not None and existing[1] == staged.sha256:
            outcomes[label] = "unchanged"
            continue
        if existing is not None:
            if not _allow_replace(services, project):
                raise FileExists(
                    f"{dist.filename} already exists in label {label!r} and this "
                    "index does not allow replacing files: upload a new version"
                )
            # Free the live-filename slot before the insert.
            session.execute(
                _REMOVE_FILE, {"file_id": existing[0], "removed_at": now, "reason": "replaced"}
            )
        session.execute(
            _INSERT_FILE,
            {
                "project_id": project.id,
                "label": label,
                "filename": dist.filename,
                "version": str(dist.version),
                "packagetype": dist.packagetype,
                "sha256": staged.sha256,
                "size": staged.size,
                "requires_python": meta.requires_python,
                "metadata_sha256": metadata_sha256,
                "uploaded_at": now,
                "uploader_id": principal.user_id,
            },
        )
        outcome: Outcome = "replaced" if existing is not None else "uploaded"
        outcomes[label] = outcome
        audit.record(
            session,
            principal.actor,
            f"file.{'replace' if existing else 'upload'}",
            project=project.name,
            target=dist.filename,
            label=label,
            sha256=staged.sha256,
            previous_sha256=existing[1] if existing else None,
            token=principal.token_name,
        )
    serial = None
    if any(o != "unchanged" for o in outcomes.values()):
        serial = serials.bump(session, project)
    return outcomes, project.name, serial


RACE_ATTEMPTS = 5


def _record_racing(
    services: Services, record: Callable[[Session], tuple[dict[str, Outcome], str, int | None]]
) -> tuple[dict[str, Outcome], str, int | None]:
    """Record, deciding again when a concurrent upload of the same file committed first.

    The partial unique index ``uq_files_live`` makes the loser's insert fail; the retry
    sees the winner's row and replaces it (or finds the same bytes: unchanged).
    """
    for attempt in range(RACE_ATTEMPTS):
        try:
            return services.db.run_write(record)
        except IntegrityError:
            if attempt == RACE_ATTEMPTS - 1:
                break
    raise Conflict("other uploads of this file kept committing first: retry the upload")


def publish(
    services: Services, principal: Principal, request: UploadRequest, staged: StagedFile
) -> PublishResult:
    """Validate and record an upload. ``staged`` is consumed (committed or removed)."""
    metadata_staged: StagedFile | None = None
    try:
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
        # Permission first: outsiders learn nothing about validation.
        with services.db.read() as session:
            project = require_upload(session, principal, dist.name)
        _check_digests(request, staged)
        meta = inspect_distribution(staged.path, dist)
        with services.db.read() as session:
            _precheck(session, services, project, dist, staged, labels)
        metadata_staged = write_bytes_staged(services.settings.tmp_dir, meta.raw)
        metadata_sha256 = metadata_staged.sha256
        services.store.put_file(blob_key(metadata_sha256), metadata_staged.path)
        services.store.put_file(blob_key(staged.sha256), staged.path)

        def record(session: Session) -> tuple[dict[str, Outcome], str, int | None]:
            return _record(
                session, services, principal, dist, meta, staged, metadata_sha256, labels
            )

        outcomes, project_name, serial = _record_racing(services, record)
    finally:
        staged.path.unlink(missing_ok=True)
        if metadata_staged is not None:
            metadata_staged.path.unlink(missing_ok=True)
    if serial is not None:
        services.changed(project_name, serial)
    values = set(outcomes.values())
    overall: Outcome = (
        "replaced" if "replaced" in values else "uploaded" if "uploaded" in values else "unchanged"
    )
    warnings = [w for w in [principal.expiry_warning()] if w]
    return PublishResult(
        project=project_name,
        filename=dist.filename,
        version=str(dist.version),
        sha256=staged.sha256,
        size=staged.size,
        outcome=overall,
        labels=outcomes,
        warnings=warnings,
    )
