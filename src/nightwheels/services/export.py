"""Static export: the whole read path as plain files, for a static host or a CDN.

Layout under the destination (the same URLs as the server's, so relative links match)::

    simple/index.html, simple/index.json                the project list (label main)
    simple/<name>/index.html, simple/<name>/index.json  project pages (PEP 503/691/700/658)
    label/<label>/simple/...                            the same for every other label
    files/<sha256[:32]>/<filename>[.metadata]           file bytes and metadata, immutable
    .nightwheels-export.json                            what is exported, at which serial

A static host serves the HTML pages for ``simple/<name>/`` (its index document); PEP 691
JSON needs content negotiation, which a host can add by mapping an ``Accept`` header that
names ``application/vnd.pypi.simple.v1+json`` to ``index.json`` (docs/scale.md).

Updates are incremental: only projects whose serial moved since the recorded one are
rendered again. Order makes every moment consistent for readers: a project's files are
written before its page, pages before the project list, and the state file last, so an
interrupted export is redone from the previous state on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from nightwheels.core.names import DEFAULT_LABEL
from nightwheels.core.project_status import offers_files
from nightwheels.core.simple_pages import (
    JSON_TYPE,
    ProjectListing,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from nightwheels.db.models import File
from nightwheels.db.queries import LIVE
from nightwheels.errors import CorruptBlob
from nightwheels.services import listing, serials
from nightwheels.services.context import Services
from nightwheels.services.parallel import in_parallel
from nightwheels.storage.base import blob_key
from nightwheels.storage.static import StaticTarget

log = logging.getLogger(__name__)

STATE_PATH = ".nightwheels-export.json"
STATE_VERSION = 1
HTML_CONTENT_TYPE = "text/html; charset=utf-8"
PAGE_CACHE = "max-age=60, must-revalidate"
FILE_CACHE = "public, max-age=31536000, immutable"


@dataclass
class ExportResult:
    destination: str
    serial: int
    pages: int = 0  # project pages written
    removed: int = 0  # project pages removed
    files: int = 0  # files and metadata files copied
    withheld: int = 0  # files and metadata files deleted: their project is quarantined
    unchanged: bool = False


def _base(label: str) -> str:
    return "" if label == DEFAULT_LABEL else f"label/{label}/"


def _root(label: str) -> str:
    """The relative URL from a project page back to the export root."""
    return "../../" if label == DEFAULT_LABEL else "../../../../"


def _read_state(target: StaticTarget) -> dict[str, Any] | None:
    raw = target.read_bytes(STATE_PATH)
    if raw is None:
        return None
    try:
        state = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    return state


def _copy_blob(
    services: Services, target: StaticTarget, digest: str, path: str, content_type: str
) -> None:
    """Copy one blob, checking its bytes against the digest on the way."""
    tmp_dir = services.settings.tmp_dir
    tmp_dir.mkdir(parents=True, exist_ok=True)
    local = tmp_dir / f"export-{uuid.uuid4().hex}.part"
    hasher = hashlib.sha256()
    try:
        with open(local, "wb") as fh:
            try:
                for chunk in services.store.iter_chunks(blob_key(digest)):
                    hasher.update(chunk)
                    fh.write(chunk)
            except FileNotFoundError:
                raise CorruptBlob(
                    f"the store has no bytes for {path} (sha256 {digest}); run fsck"
                ) from None
        if hasher.hexdigest() != digest:
            raise CorruptBlob(f"the stored bytes of {path} do not match sha256 {digest}")
        target.write_file(path, local, content_type, FILE_CACHE)
    finally:
        local.unlink(missing_ok=True)


def _copy_files(services: Services, target: StaticTarget, found: ProjectListing, jobs: int) -> int:
    """Copy a project's files and metadata files that the export does not have yet."""
    wanted: list[tuple[str, str, str]] = []
    for entry in found.files:
        path = listing.file_path(entry.sha256, entry.filename)
        wanted.append((entry.sha256, path, "application/octet-stream"))
        if entry.metadata_sha256:
            wanted.append((entry.metadata_sha256, path + ".metadata", "text/plain"))
    copied: list[str] = []

    def copy(item: tuple[str, str, str]) -> None:
        digest, path, content_type = item
        if not target.exists(path):
            _copy_blob(services, target, digest, path, content_type)
            copied.append(path)

    in_parallel(copy, wanted, jobs)
    return len(copied)


def _withhold_files(services: Services, target: StaticTarget, name: str, label: str) -> int:
    """Delete every file of a quarantined project (PEP 792) that an export may hold: a static
    host would otherwise serve a URL someone kept. Lifting the quarantine copies the listed
    ones again."""
    with services.db.read() as session:
        paths = listing.file_paths_of(session, name, label)
    present = [path for path in paths if target.exists(path)]
    for path in present:
        target.delete(path)
    return len(present)


def _tracks(services: Services, name: str) -> tuple[str, ...]:
    settings = services.settings
    return (settings.tracks_url.format(name=name),) if settings.pep708_tracks else ()


def export_static(
    services: Services,
    target: StaticTarget,
    *,
    full: bool = False,
    files_url: str | None = None,
    jobs: int = 8,
) -> ExportResult:
    """Bring ``target`` up to date with the index (everything when ``full``).

    ``files_url``: link files at ``<files_url>/files/...`` (e.g. the server or a bucket
    behind a CDN) instead of copying their bytes into the export.
    """
    files_url = files_url.rstrip("/") if files_url else None
    state = _read_state(target)
    if state is None or state.get("files_url") != files_url:
        full = True
    exported: dict[str, dict[str, int]] = dict(state["projects"]) if state else {}
    since = -1 if full else int(state["serial"])  # type: ignore[index]
    with services.db.read() as session:
        # The serial first: anything committed after it is picked up by the next run.
        current = serials.current(session)
        result = ExportResult(target.describe(), current)
        if since == current:
            result.unchanged = True
            return result
        changed = sorted(name for name, _ in serials.changed_since(session, since))
        live = select(File.label).where(LIVE).distinct()
        labels = set(session.execute(live).scalars())
    labels |= set(exported) | {DEFAULT_LABEL}
    for label in sorted(labels):
        have = exported.setdefault(label, {})
        base = _base(label)
        for name in changed:
            root = files_url + "/" if files_url else _root(label)
            with services.db.read() as session:
                found = listing.load_listing(
                    session, name, label, root=root, tracks=_tracks(services, name)
                )
            page = f"{base}simple/{name}/"
            if found is None:
                if name in have:
                    target.delete(page + "index.json")
                    target.delete(page + "index.html")
                    del have[name]
                    result.removed += 1
                continue
            if files_url is None and not offers_files(found.status):
                result.withheld += _withhold_files(services, target, name, label)
            elif files_url is None:
                result.files += _copy_files(services, target, found, jobs)
            target.write_bytes(
                page + "index.json", render_project_json(found), JSON_TYPE, PAGE_CACHE
            )
            target.write_bytes(
                page + "index.html", render_project_html(found), HTML_CONTENT_TYPE, PAGE_CACHE
            )
            have[name] = found.serial
            result.pages += 1
        names = sorted(have)  # the projects with a page: no query over all files
        index = f"{base}simple/"
        if names or label == DEFAULT_LABEL:
            target.write_bytes(
                index + "index.json", render_index_json(names), JSON_TYPE, PAGE_CACHE
            )
            target.write_bytes(
                index + "index.html", render_index_html(names), HTML_CONTENT_TYPE, PAGE_CACHE
            )
        else:
            target.delete(index + "index.json")
            target.delete(index + "index.html")
        if not have:
            del exported[label]
    new_state = {
        "version": STATE_VERSION,
        "serial": current,
        "files_url": files_url,
        "projects": exported,
    }
    target.write_bytes(
        STATE_PATH, json.dumps(new_state, sort_keys=True).encode(), "application/json", "no-cache"
    )
    return result


class ExportWatcher:
    """Keeps an export current: after each change made in this process at once, and
    after changes made elsewhere within ``interval`` seconds (one serial read per tick).

    Run one watcher per destination (one server, or ``nightwheels export-static --watch``).
    """

    def __init__(
        self,
        services: Services,
        target: StaticTarget,
        *,
        interval: float = 1.0,
        files_url: str | None = None,
    ) -> None:
        self.services = services
        self.target = target
        self.interval = interval
        self.files_url = files_url
        self.last: ExportResult | None = None
        self._exported_serial = -1
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        services.listeners.append(lambda _name, _serial: self._wake.set())

    def tick(self) -> ExportResult | None:
        with self.services.db.read() as session:
            current = serials.current(session)
        if current == self._exported_serial:
            return None
        result = export_static(self.services, self.target, files_url=self.files_url)
        self._exported_serial = result.serial
        self.last = result
        return result

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.tick()
                if result is not None and not result.unchanged:
                    log.info(
                        "exported serial %s to %s: %s pages, %s files",
                        result.serial,
                        result.destination,
                        result.pages,
                        result.files,
                    )
            except Exception:  # keep watching; the next tick retries from the saved state
                log.exception("static export failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="static-export", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
