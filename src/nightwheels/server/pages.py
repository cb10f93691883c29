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
from dataclasses import dataclass, replace

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


def pages_size(pages: dict[str, Page]) -> int:
    """Bytes held by a set of page variants (an estimate: bodies plus a fixed overhead)."""
    # HTML_TYPE and LEGACY_HTML_TYPE share their bytes: count each object once.
    parts = {id(b): len(b) for p in pages.values() for b in (p.body, p.gzipped)}
    return sum(parts.values()) + 200


@dataclass(frozen=True)
class _Rendered:
    serial: int
    pages: dict[str, Page]
    names: frozenset[str] = frozenset()  # the project list's names (index pages only)

    @property
    def size(self) -> int:
        return pages_size(self.pages)


def _pages(json_body: bytes, html_body: bytes) -> dict[str, Page]:
    html = make_page(html_body, HTML_TYPE)  # both HTML types: one body, one gzip, one ETag
    return {
        JSON_TYPE: make_page(json_body, JSON_TYPE),
        HTML_TYPE: html,
        LEGACY_HTML_TYPE: replace(html, media_type=LEGACY_HTML_TYPE),
    }


def _render_project(listing_: ProjectListing) -> dict[str, Page]:
    return _pages(render_project_json(listing_), render_project_html(listing_))


def _render_index(names: list[str]) -> dict[str, Page]:
    return _pages(render_index_json(names), render_index_html(names))


# Above this many changed projects, the project list is queried whole.
INDEX_FULL_RELOAD = 500


class PageCache:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.serials: dict[str, int] = {}
        self.global_serial = -1
        self._polled = -1  # every change up to this serial is in ``serials``
        self._projects: dict[tuple[str, str, str], _Rendered] = {}
        self._indexes: dict[str, _Rendered] = {}
        self._bytes = 0
        self.max_bytes = services.settings.page_cache_mib * 1024 * 1024
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
        """Learn about changes committed by any process since the last refresh.

        The watermark is only ever moved here: a change learned otherwise (made by this
        process, or seen while rendering) can carry a higher serial than a change that
        another process committed just before it, which must still be picked up.
        Serials are handed out under the ``index_state`` row lock, so they commit in order.
        """
        with self.services.db.read() as session:
            current = serials.current(session)
            if current == self._polled:
                return
            changed = serials.changed_since(session, self._polled)
        with self._lock:
            for name, serial in changed:
                if serial > self.serials.get(name, -1):
                    self.serials[name] = serial
            self._polled = max(self._polled, current)
            self.global_serial = max(self.global_serial, current)

    def _on_change(self, name: str, serial: int) -> None:
        with self._lock:
            if serial > self.serials.get(name, -1):
                self.serials[name] = serial
            self.global_serial = max(self.global_serial, serial)

    def knows(self, name: str) -> bool:
        """Whether the project exists (as of the last poll or local change)."""
        return name in self.serials

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
        self._store(key, rendered)
        return rendered.pages or None

    def _store(self, key: tuple[str, str, str], rendered: _Rendered) -> None:
        """Keep a page, evicting the oldest pages beyond the memory budget."""
        with self._lock:
            old = self._projects.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._projects[key] = rendered
            self._bytes += rendered.size
            while self._bytes > self.max_bytes and len(self._projects) > 1:
                evicted = self._projects.pop(next(iter(self._projects)))
                self._bytes -= evicted.size

    def cached_index(self, label: str) -> dict[str, Page] | None:
        cached = self._indexes.get(label)
        return cached.pages if cached is not None and cached.serial == self.global_serial else None

    def index(self, label: str) -> dict[str, Page]:
        """The project list. After the first, only projects changed since the last render
        are looked at again: its cost follows the changes, not the size of the index."""
        serial = self.global_serial
        cached = self._indexes.get(label)
        if cached is not None and cached.serial == serial:
            return cached.pages
        with self.services.db.read() as session:
            changed = (
                [n for n, s in list(self.serials.items()) if s > cached.serial]
                if cached is not None
                else None
            )
            if changed is None or len(changed) > INDEX_FULL_RELOAD:
                names = set(listing.list_project_names(session, label))
            else:
                listed = listing.listed_among(session, label, changed)
                names = (set(cached.names) - set(changed)) | listed
        rendered = _Rendered(serial, _render_index(sorted(names)), frozenset(names))
        self._indexes[label] = rendered
        return rendered.pages
