"""The simple-page cache: rendered once per (view, project, serial), served from memory.

Coherence across processes: a background thread checks the global serial every
``serial_poll_interval`` seconds (one indexed single-row read) and learns which projects
changed; changes made by this process are applied at once after their commit. An
unchanged page therefore costs no database query at all.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from nightwheels.core.simple_pages import (
    HTML_TYPE,
    JSON_TYPE,
    LEGACY_HTML_TYPE,
    ProjectListing,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from nightwheels.services import listing, serials
from nightwheels.services.context import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Page:
    body: bytes
    gzipped: bytes
    etag: str
    media_type: str


def make_page(body: bytes, media_type: str) -> Page:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Page(body, gzip.compress(body, 6, mtime=0), etag, media_type)


@dataclass(frozen=True)
class _Rendered:
    serial: int
    pages: dict[str, Page]


def _render_project(listing_: ProjectListing) -> dict[str, Page]:
    html = render_project_html(listing_)
    return {
        JSON_TYPE: make_page(render_project_json(listing_), JSON_TYPE),
        HTML_TYPE: make_page(html, HTML_TYPE),
        LEGACY_HTML_TYPE: make_page(html, LEGACY_HTML_TYPE),
    }


def _render_index(names: list[str]) -> dict[str, Page]:
    html = render_index_html(names)
    return {
        JSON_TYPE: make_page(render_index_json(names), JSON_TYPE),
        HTML_TYPE: make_page(html, HTML_TYPE),
        LEGACY_HTML_TYPE: make_page(html, LEGACY_HTML_TYPE),
    }


class PageCache:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.serials: dict[str, int] = {}
        self.global_serial = -1
        self._projects: dict[tuple[str, str, str], _Rendered] = {}
        self._indexes: dict[str, _Rendered] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        settings = services.settings
        self._tracks: Callable[[str], tuple[str, ...]] = (
            (lambda name: (settings.tracks_url.format(name=name),))
            if settings.pep708_tracks
            else (lambda name: ())
        )
        services.listeners.append(self._on_change)

    # -- coherence -------------------------------------------------------------------
    def refresh(self) -> None:
        """Learn about changes committed by any process since the last refresh."""
        with self.services.db.read() as session:
            current = serials.current(session)
            if current == self.global_serial:
                return
            changed = serials.changed_since(session, max(self.global_serial, -1))
        with self._lock:
            for name, serial in changed:
                if serial > self.serials.get(name, -1):
                    self.serials[name] = serial
            self.global_serial = max(self.global_serial, current)

    def _on_change(self, name: str, serial: int) -> None:
        with self._lock:
            if serial > self.serials.get(name, -1):
                self.serials[name] = serial
            self.global_serial = max(self.global_serial, serial)

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="serial-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        interval = self.services.settings.serial_poll_interval
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception:  # keep serving from cache; log and retry next tick
                log.exception("serial poll failed")

    # -- pages -----------------------------------------------------------------------
    def cached_project(self, label: str, name: str, root: str) -> dict[str, Page] | None:
        """The pages if they are rendered and current (no I/O), else ``None``."""
        serial = self.serials.get(name)
        cached = self._projects.get((label, name, root))
        if serial is not None and cached is not None and cached.serial == serial:
            return cached.pages or None
        return None

    def project(self, label: str, name: str, root: str) -> dict[str, Page] | None:
        """Rendered pages of a project in a label view, or ``None`` if it lists no file."""
        serial = self.serials.get(name)
        if serial is None:
            return None  # the serial map knows every project (up to the poll interval)
        key = (label, name, root)
        cached = self._projects.get(key)
        if cached is not None and cached.serial == serial:
            return cached.pages or None
        with self.services.db.read() as session:
            found = listing.load_listing(session, name, label, root=root, tracks=self._tracks(name))
        if found is None:
            rendered = _Rendered(serial, {})
        else:
            rendered = _Rendered(found.serial, _render_project(found))
            self._on_change(name, found.serial)
        self._projects[key] = rendered
        return rendered.pages or None

    def cached_index(self, label: str) -> dict[str, Page] | None:
        cached = self._indexes.get(label)
        return cached.pages if cached is not None and cached.serial == self.global_serial else None

    def index(self, label: str) -> dict[str, Page]:
        serial = self.global_serial
        cached = self._indexes.get(label)
        if cached is not None and cached.serial == serial:
            return cached.pages
        with self.services.db.read() as session:
            names = listing.list_project_names(session, label)
        rendered = _Rendered(serial, _render_index(names))
        self._indexes[label] = rendered
        return rendered.pages
