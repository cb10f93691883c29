"""Mirroring another index into this one: ``nightwheels mirror SOURCE [PROJECT ...]``.

A way off the hosted channel (or off another nightwheels, a devpi, a static export): read
the source's simple pages (PEP 691 JSON, else PEP 503 HTML), and publish each file here
through :func:`~nightwheels.services.publish.publish_many`, so every rule of an upload
applies. What makes it safe to run again and again:

- a file whose sha256 is already live here (in the target label) is not downloaded: a
  re-run copies only what is new, and an interrupted run resumes where it stopped;
- every byte is verified against the sha256 the source lists, while it is downloaded; a
  file the source lists without a sha256 is skipped (nothing to verify it against);
- upload times are kept where the source gives them (PEP 700), so retention treats a
  mirrored nightly by its real age; yank marks (PEP 592) are kept too;
- PEP 658 metadata, where served, is fetched, checked against its listed digest and
  compared with the wheel's own ``METADATA`` (the index serves the wheel's, always).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import httpx
from packaging.utils import canonicalize_name
from packaging.version import Version
from sqlalchemy import select

from nightwheels.core.filenames import parse_filename
from nightwheels.core.names import DEFAULT_LABEL, normalize_name, validate_label
from nightwheels.core.simple_index import (
    ACCEPT,
    RemoteFile,
    SimplePageError,
    parse_index_page,
    parse_project_page,
)
from nightwheels.db.models import File
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import InvalidRequest, NightwheelsError, NotFound, Unavailable
from nightwheels.services import yank
from nightwheels.services.auth import Principal, operator_principal
from nightwheels.services.context import Services
from nightwheels.services.publish import PublishResult, UploadRequest, publish_many
from nightwheels.storage.staging import StagedFile, StagingFile

__all__ = ["FileEvent", "MirrorReport", "mirror"]

MAX_PAGE_BYTES = 64 * 1024 * 1024  # a project page with ~100k files
MAX_METADATA_BYTES = 4 * 1024 * 1024
BATCH_FILES = 16  # files recorded per transaction
CHUNK = 1 << 20

Status = Literal["copied", "present", "skipped", "failed"]


@dataclass(frozen=True)
class FileEvent:
    project: str
    filename: str
    status: Status
    size: int = 0
    detail: str = ""


@dataclass
class MirrorReport:
    source: str
    label: str
    projects: list[str] = field(default_factory=list)
    events: list[FileEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for e in self.events if e.status == status)

    @property
    def copied_bytes(self) -> int:
        return sum(e.size for e in self.events if e.status == "copied")

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "label": self.label,
            "projects": self.projects,
            "copied": self.count("copied"),
            "copied_bytes": self.copied_bytes,
            "present": self.count("present"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "files": [e.__dict__ for e in self.events if e.status != "present"],
            "warnings": self.warnings,
        }


class _Source:
    """The source index over HTTP, every read bounded."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = url.rstrip("/") + "/"
        self.http = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self.http.close()

    def _get(self, url: str, limit: int, accept: str = ACCEPT) -> tuple[str, bytes]:
        try:
            with self.http.stream("GET", url, headers={"Accept": accept}) as response:
                if response.status_code == 404:
                    raise NotFound(f"{url} answered 404")
                if response.status_code != 200:
                    raise Unavailable(f"{url} answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > limit:
                        raise InvalidRequest(f"{url} is larger than {limit // 2**20} MiB")
                return response.headers.get("content-type", ""), bytes(body)
        except httpx.HTTPError as exc:
            raise Unavailable(f"could not read {url}: {exc}") from None

    def projects(self) -> list[str]:
        content_type, body = self._get(self.url, MAX_PAGE_BYTES)
        return parse_index_page(content_type, body)

    def files(self, project: str) -> tuple[list[RemoteFile], list[str]]:
        url = f"{self.url}{canonicalize_name(project)}/"
        content_type, body = self._get(url, MAX_PAGE_BYTES)
        page = parse_project_page(content_type, body, url)
        return page.files, page.skipped

    def metadata(self, remote: RemoteFile) -> bytes:
        return self._get(remote.url + ".metadata", MAX_METADATA_BYTES, "*/*")[1]

    def download(self, remote: RemoteFile, services: Services) -> StagedFile:
        """The file, staged on disk, its sha256 checked against the listing."""
        staging = StagingFile(services.settings.tmp_dir, services.settings.max_upload_size)
        try:
            with self.http.stream("GET", remote.url) as response:
                if response.status_code != 200:
                    raise Unavailable(f"{remote.url} answered {response.status_code}")
                for chunk in response.iter_bytes(CHUNK):
                    staging.write(chunk)
            staged = staging.finish()
        except httpx.HTTPError as exc:
            staging.discard()
            raise Unavailable(f"could not download {remote.url}: {exc}") from None
        except BaseException:
            staging.discard()
            raise
        if staged.sha256 != remote.sha256:
            staged.discard()
            raise InvalidRequest(
                f"sha256 mismatch: the source lists {remote.sha256} but served {staged.sha256}"
            )
        return staged


def _live_digests(services: Services, project: str, label: str) -> set[str]:
    with services.db.read() as session:
        found = project_by_name(session, project)
        if found is None:
            return set()
        rows = session.execute(
            select(File.sha256).where(File.project_id == found.id, File.label == label, LIVE)
        )
        return set(rows.scalars())


def _newest(
    project: str, files: list[RemoteFile], versions: int | None
) -> tuple[list[tuple[RemoteFile, Version]], list[FileEvent]]:
    """Files with a parseable name, of the newest ``versions`` versions (all if None), and
    the events of those skipped for their name."""
    kept: list[tuple[RemoteFile, Version]] = []
    skipped: list[FileEvent] = []
    for remote in files:
        try:
            dist = parse_filename(remote.filename)
        except NightwheelsError as exc:
            skipped.append(FileEvent(project, remote.filename, "skipped", detail=exc.message))
            continue
        kept.append((remote, dist.version))
    if versions is not None:
        wanted = set(sorted({v for _, v in kept}, reverse=True)[:versions])
        kept = [(r, v) for r, v in kept if v in wanted]
    return kept, skipped


def _check_metadata(
    source: _Source, remote: RemoteFile, result: PublishResult, services: Services
) -> str | None:
    """A warning when the served PEP 658 metadata is not what the wheel carries."""
    if not remote.metadata_served:
        return None
    try:
        served = source.metadata(remote)
    except NightwheelsError as exc:
        return f"{remote.filename}: its metadata could not be fetched ({exc.message})"
    digest = hashlib.sha256(served).hexdigest()
    if remote.metadata_sha256 and digest != remote.metadata_sha256:
        return f"{remote.filename}: the served metadata does not match its listed sha256"
    with services.db.read() as session:
        ours = session.execute(
            select(File.metadata_sha256).where(File.sha256 == result.sha256, LIVE).limit(1)
        ).scalar_one_or_none()
    if ours is not None and ours != digest:
        return (
            f"{remote.filename}: the source serves metadata that differs from the wheel's "
            "METADATA; this index serves the wheel's"
        )
    return None


def _batches(items: list[tuple[RemoteFile, Version]]) -> Iterator[list[tuple[RemoteFile, Version]]]:
    for start in range(0, len(items), BATCH_FILES):
        yield items[start : start + BATCH_FILES]


def _mirror_project(
    services: Services,
    source: _Source,
    principal: Principal,
    project: str,
    *,
    label: str,
    versions: int | None,
    report: MirrorReport,
    on_event: Callable[[FileEvent], None],
    on_plan: Callable[[int], None],
) -> None:
    def emit(event: FileEvent) -> None:
        report.events.append(event)
        on_event(event)

    files, page_skips = source.files(project)
    report.warnings += [f"{project}: {why}" for why in page_skips]
    candidates, unparseable = _newest(project, files, versions)
    present = _live_digests(services, project, label)
    todo: list[tuple[RemoteFile, Version]] = []
    for remote, version in candidates:
        if remote.sha256 is None:
            emit(
                FileEvent(
                    project,
                    remote.filename,
                    "skipped",
                    detail="the source lists no sha256 to verify it against",
                )
            )
        elif remote.sha256 in present:
            emit(FileEvent(project, remote.filename, "present"))
        else:
            todo.append((remote, version))
    for event in unparseable:
        emit(event)
    on_plan(sum(1 for _ in todo))
    for batch in _batches(todo):
        uploads = []
        fetched: list[RemoteFile] = []
        for remote, version in batch:
            try:
                staged = source.download(remote, services)
            except NightwheelsError as exc:
                emit(FileEvent(project, remote.filename, "failed", detail=exc.message))
                continue
            request = UploadRequest(
                filename=remote.filename,
                name=project,
                version=str(version),
                sha256_digest=remote.sha256,
                labels=(label,),
                uploaded_at=remote.upload_time,
            )
            uploads.append((request, staged))
            fetched.append(remote)
        if not uploads:
            continue
        for remote, answer in zip(fetched, publish_many(services, principal, uploads), strict=True):
            if isinstance(answer, NightwheelsError):
                emit(FileEvent(project, remote.filename, "failed", detail=answer.message))
                continue
            if remote.yanked is not None:
                yank.set_yanked(
                    services,
                    principal.actor,
                    answer.project,
                    filename=answer.filename,
                    reason=remote.yanked or None,
                )
            warning = _check_metadata(source, remote, answer, services)
            if warning:
                report.warnings.append(warning)
            emit(FileEvent(project, remote.filename, "copied", size=answer.size))


def mirror(
    services: Services,
    source_url: str,
    projects: list[str],
    *,
    owner: str,
    label: str = DEFAULT_LABEL,
    versions: int | None = None,
    timeout: float = 60.0,
    on_event: Callable[[FileEvent], None] = lambda event: None,
    on_plan: Callable[[int], None] = lambda count: None,
) -> MirrorReport:
    """Copy ``projects`` (all the source lists, when empty) from ``source_url``.

    ``versions`` keeps only the newest N versions of each project. A project the source
    does not have is a failed entry of the report, not an abort: the others still copy.
    """
    label = validate_label(label)
    if versions is not None and versions < 1:
        raise InvalidRequest("--versions must be at least 1")
    principal = operator_principal(services.db, owner, "mirror")
    report = MirrorReport(source=source_url, label=label)
    source = _Source(source_url, timeout)
    try:
        names = projects or source.projects()
        report.projects = sorted({normalize_name(n) for n in names})
        for project in report.projects:
            try:
                _mirror_project(
                    services,
                    source,
                    principal,
                    project,
                    label=label,
                    versions=versions,
                    report=report,
                    on_event=on_event,
                    on_plan=on_plan,
                )
            except (NightwheelsError, SimplePageError) as exc:
                detail = exc.message if isinstance(exc, NightwheelsError) else str(exc)
                event = FileEvent(project, "", "failed", detail=detail)
                report.events.append(event)
                on_event(event)
    finally:
        source.close()
    return report
