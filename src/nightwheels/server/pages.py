"""The simple-page cache: rendered once per (view, project, serial), served from memory.

Coherence across processes: a background thread checks the global serial every
``serial_poll_interval`` seconds (one indexed single-row read) and learns which projects
changed; changes made by this process are applied at once after their commit. An
unchanged page therefore costs no database query at all.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from nightwheels.core.names import DEFAULT_LABEL
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
from nightwheels.db.failures import DATABASE_OUTAGE
from nightwheels.services import listing, serials
from nightwheels.services.context import Services


@dataclass(frozen=True)
class Page:
    body: bytes
    gzipped: bytes
    etag: str  # of the body
    media_type: str
    gzip_etag: str  # of the gzipped body: each representation has its own


def make_page(body: bytes, media_type: str) -> Page:
    digest = hashlib.sha256(body).hexdigest()[:32]
    return Page(
        body, gzip.compress(body, 6, mtime=0), f'"{digest}"', media_type, f'"{digest}-gzip"'
    )


# What a cache entry costs beyond its bodies: its key, the entry objects, the dict slot.
ENTRY_BYTES = 1024


def pages_size(pages: dict[str, Page]) -> int:
    """Bytes held by a set of page variants (an estimate: bodies plus a fixed overhead)."""
    # HTML_TYPE and LEGACY_HTML_TYPE share their bytes: count each object once.
    parts = {id(b): len(b) for p in pages.values() for b in (p.body, p.gzipped)}
    return sum(parts.values()) + ENTRY_BYTES


@dataclass(frozen=True)
class _Rendered:
    serial: int
    pages: dict[str, Page]
    names: frozenset[str] = frozenset()  # the project list's names (index pages only)

    @property
    def size(self) -> int:
        return pages_size(self.pages)


def _pages(json_body: bytes, html_body: bytes) -> dict[str, Page]:
    # both HTML types: one body, one gzip, one ETag
    return {JSON_TYPE: make_page(json_body, JSON_TYPE), **_html_pages(html_body)}


def _html_pages(body: bytes) -> dict[str, Page]:
    html = make_page(body, HTML_TYPE)
    return {HTML_TYPE: html, LEGACY_HTML_TYPE: replace(html, media_type=LEGACY_HTML_TYPE)}


def _render_project(listing_: ProjectListing, kind: str | None = None) -> dict[str, Page]:
    """Both formats, or only the JSON (``kind="json"``) or HTML (``"html"``) pages."""
    if kind == "json":
        return {JSON_TYPE: make_page(render_project_json(listing_), JSON_TYPE)}
    if kind == "html":
        return _html_pages(render_project_html(listing_))
    return _pages(render_project_json(listing_), render_project_html(listing_))


def page_kind(media_type: str) -> str:
    """Which rendering serves ``media_type``: the server renders each format on demand
    (pip and uv ask for JSON, browsers and older tools for HTML), not both at every change."""
    return "json" if media_type == JSON_TYPE else "html"


def _render_index(names: list[str]) -> dict[str, Page]:
    return _pages(render_index_json(names), render_index_html(names))


# Above this many changed projects, the project list is queried whole.
INDEX_FULL_RELOAD = 500
# Longest a poll spends rendering changed pages ahead of requests (seconds).
PRERENDER_BUDGET = 0.25


class PageCache:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.serials: dict[str, int] = {}
        self.global_serial = -1
        self._polled = -1  # every change up to this serial is in ``serials``
        # (label, name, root, kind) -> pages
        self._projects: dict[tuple[str, str, str, str], _Rendered] = {}
        self._indexes: dict[str, _Rendered] = {}
        self._bytes = 0
        self.max_bytes = services.settings.page_cache_mib * 1024 * 1024
        self._lock = threading.Lock()
        # Labels that have files, read on the first request for a label other than main;
        # afterwards only the labels of projects changed since (``_labels_stale``) are read.
        # Only labels in it get pages (and cache entries): any other is a 404. Both sets
        # hold names from the database only (labels, projects), never from a request.
        self._labels: set[str] | None = None
        self._labels_stale: set[str] = set()
        self._labels_lock = threading.Lock()
        self._index_lock = threading.Lock()
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
            self._prerender(session, {n: s for n, s in changed if s > self.serials.get(n, -1)})
        with self._lock:
            for name, serial in changed:
                if serial > self.serials.get(name, -1):
                    self.serials[name] = serial
            self._labels_stale.update(name for name, _ in changed)
            self._polled = max(self._polled, current)
            self.global_serial = max(self.global_serial, current)

    def _prerender(self, session: Session, changed: dict[str, int]) -> None:
        """Render the cached pages of projects that another process changed, before the
        change is published: requests keep getting the current page from memory instead
        of each waiting for a render (a prune changes 1,000 pages a minute). This delays
        the new pages by their render time, within ``PRERENDER_BUDGET`` per poll; pages
        left over are rendered on request, as are pages changed by this process."""
        if not changed:
            return
        keys: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        for key in list(self._projects):
            if key[1] in changed:
                keys[key[1]].append(key)
        deadline = time.monotonic() + PRERENDER_BUDGET
        for name, views in keys.items():
            if time.monotonic() > deadline:
                break
            rendered = [(key, self._load(session, *key, changed[name])) for key in views]
            for key, pages in rendered:
                self._store(key, pages)
            self._on_change(name, max(pages.serial for _, pages in rendered))
            time.sleep(0)  # hand the interpreter to the event loop between renders

    def _on_change(self, name: str, serial: int) -> None:
        with self._lock:
            if serial > self.serials.get(name, -1):
                self.serials[name] = serial
                self._labels_stale.add(name)
            self.global_serial = max(self.global_serial, serial)

    def label_known(self, label: str) -> bool | None:
        """Whether ``label`` has files, without I/O; ``None`` when the database must say."""
        if label == DEFAULT_LABEL:
            return True
        labels = self._labels
        if labels is None or (label not in labels and self._labels_stale):
            return None
        return label in labels

    def has_label(self, label: str) -> bool:
        """Whether ``label`` has files (reads the labels of changed projects if need be)."""
        known = self.label_known(label)
        if known is not None:
            return known
        with self._labels_lock:  # one reader at a time; the others use its answer
            known = self.label_known(label)
            if known is not None:
                return known
            with self._lock:
                stale, self._labels_stale = self._labels_stale, set()
            try:
                with self.services.db.read() as session:
                    if self._labels is None:
                        labels = listing.labels_of(session)
                    else:
                        labels = self._labels | listing.labels_of(session, sorted(stale))
            except BaseException:
                with self._lock:
                    self._labels_stale |= stale
                raise
            self._labels = labels
        return label in labels

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
        self._warm_index()  # the first project list is built here, not by a request
        while not self._stop.wait(interval):
            self.poll_once()

    def _warm_index(self) -> None:
        """Render the ``main`` project list in the poll thread when it was never rendered
        or is stale: requests find it ready instead of building it (at 500,000 files and
        10,000 projects the first build took 0.9 s, issue 19 item 1)."""
        cached = self._indexes.get(DEFAULT_LABEL)
        if cached is not None and cached.serial == self.global_serial:
            return
        try:
            self.index(DEFAULT_LABEL)
        except Exception as exc:  # a request builds it then; the outage is logged once
            DATABASE_OUTAGE.failed(exc)

    def poll_once(self) -> None:
        """One tick of the serial poll. A failure keeps the cache serving and is logged
        once per outage, then at a limited rate, and its end is logged too."""
        try:
            self.refresh()
        except Exception as exc:
            DATABASE_OUTAGE.failed(exc)
        else:
            DATABASE_OUTAGE.recovered()
            if DEFAULT_LABEL in self._indexes:  # asked for before: keep it ready
                self._warm_index()

    # -- pages -----------------------------------------------------------------------
    def cached_project(self, label: str, name: str, root: str, kind: str) -> dict[str, Page] | None:
        """The pages if they are rendered and current (no I/O), else ``None``."""
        serial = self.serials.get(name)
        cached = self._projects.get((label, name, root, kind))
        if serial is not None and cached is not None and cached.serial == serial:
            return cached.pages or None
        return None

    def project(self, label: str, name: str, root: str, kind: str) -> dict[str, Page] | None:
        """Rendered pages (of one ``kind``, see :func:`page_kind`) of a project in a label
        view, or ``None`` if it lists no file."""
        serial = self.serials.get(name)
        if serial is None:
            return None  # the serial map knows every project (up to the poll interval)
        key = (label, name, root, kind)
        cached = self._projects.get(key)
        if cached is not None and cached.serial == serial:
            return cached.pages or None
        with self.services.db.read() as session:
            rendered = self._load(session, label, name, root, kind, serial)
        self._store(key, rendered)
        self._on_change(name, rendered.serial)
        return rendered.pages or None

    def _load(
        self, session: Session, label: str, name: str, root: str, kind: str, serial: int
    ) -> _Rendered:
        found = listing.load_listing(session, name, label, root=root, tracks=self._tracks(name))
        if found is None:
            return _Rendered(serial, {})
        return _Rendered(found.serial, _render_project(found, kind))

    def _store(self, key: tuple[str, str, str, str], rendered: _Rendered) -> None:
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
        # One build at a time: a request that arrives while the poll thread builds the
        # list at start waits for that build instead of making a second one beside it.
        with self._index_lock:
            cached = self._indexes.get(label)
            if cached is not None and cached.serial >= serial:
                return cached.pages
            return self._build_index(label, cached)

    def _build_index(self, label: str, cached: _Rendered | None) -> dict[str, Page]:
        serial = self.global_serial
        with self.services.db.read() as session:
            changed = (
                [n for n, s in list(self.serials.items()) if s > cached.serial]
                if cached is not None
                else None
            )
            # A probe per changed project, unless most projects changed (then one per
            # project in one query): the cost follows the changes either way.
            if changed is None or len(changed) > max(INDEX_FULL_RELOAD, len(self.serials) // 2):
                names = set(listing.list_project_names(session, label))
            else:
                listed = listing.listed_among(session, label, changed)
                names = (set(cached.names) - set(changed)) | listed
        rendered = _Rendered(serial, _render_index(sorted(names)), frozenset(names))
        self._indexes[label] = rendered
        return rendered.pages
