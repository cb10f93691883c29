"""As-of views: the simple pages as they were at a past moment, within the history window.

``/as-of/<RFC 3339 time>/simple/...`` (and ``/as-of/<time>/label/<label>/simple/...``) list
the files that were listed then: uploaded by that moment and not yet replaced or removed.
Removed files stay downloadable for the history window, so pip and uv can install from such
a view to reproduce or bisect last week's nightlies. Pages are cached per (moment, view) and
checked against the project's serial like the live pages.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nightwheels.core.names import DEFAULT_LABEL, validate_label
from nightwheels.db.models import utcnow
from nightwheels.errors import InvalidRequest, NotFound
from nightwheels.server.pages import Page, PageCache, _render_index, _render_project, pages_size
from nightwheels.server.simple import _no_label, _serve, canonical_redirect, label_exists
from nightwheels.server.state import app_state
from nightwheels.services import listing
from nightwheels.services.context import Services


def parse_moment(text: str, services: Services, now: datetime | None = None) -> datetime:
    """An RFC 3339 time within the history window, in UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise InvalidRequest(
            f"{text!r} is not an RFC 3339 time such as 2026-11-25T12:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"{text!r} has no time zone: end it with Z or an offset like +02:00")
    moment = moment.astimezone(UTC)
    now = now or utcnow()
    if moment > now:
        raise InvalidRequest(f"{text} is in the future")
    days = services.settings.history_days
    if moment < now - timedelta(days=days):
        raise NotFound(
            f"as-of views reach back {days:g} days (the history window); {text} is older"
        )
    return moment


class AsOfPages:
    """Rendered as-of pages, valid while the project's serial holds, least recently used
    evicted beyond ``asof_cache_mib``. Bounded by bytes, not entries: every distinct moment
    in a URL is a new entry, and one entry of a large project weighs megabytes."""

    def __init__(self, services: Services, pages: PageCache) -> None:
        self.services = services
        self.pages = pages
        self._cache: OrderedDict[tuple[object, ...], tuple[int, dict[str, Page]]] = OrderedDict()
        self._bytes = 0
        self.max_bytes = services.settings.asof_cache_mib * 1024 * 1024
        self._lock = threading.Lock()  # renders run in worker threads

    def _get(self, key: tuple[object, ...], serial: int) -> dict[str, Page] | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == serial:
                self._cache.move_to_end(key)
                return hit[1]
            return None

    @property
    def bytes(self) -> int:
        return self._bytes

    def _put(self, key: tuple[object, ...], serial: int, pages: dict[str, Page]) -> None:
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._bytes -= pages_size(old[1])
            self._cache[key] = (serial, pages)
            self._bytes += pages_size(pages)
            while self._bytes > self.max_bytes and len(self._cache) > 1:
                _key, (_serial, evicted) = self._cache.popitem(last=False)
                self._bytes -= pages_size(evicted)

    def _tracks(self, name: str) -> tuple[str, ...]:
        settings = self.services.settings
        return (settings.tracks_url.format(name=name),) if settings.pep708_tracks else ()

    def project(self, moment: datetime, label: str, name: str, root: str) -> dict[str, Page] | None:
        serial = self.pages.serials.get(name)
        if serial is None:
            return None
        key = ("project", moment, label, name, root)
        hit = self._get(key, serial)
        if hit is not None:
            return hit or None
        with self.services.db.read() as session:
            found = listing.load_listing(
                session, name, label, root=root, tracks=self._tracks(name), as_of=moment
            )
        rendered = _render_project(found) if found is not None else {}
        self._put(key, serial, rendered)
        return rendered or None

    def index(self, moment: datetime, label: str) -> dict[str, Page]:
        serial = self.pages.global_serial
        key = ("index", moment, label)
        hit = self._get(key, serial)
        if hit is not None:
            return hit
        with self.services.db.read() as session:
            names = listing.list_project_names(session, label, as_of=moment)
        rendered = _render_index(names)
        self._put(key, serial, rendered)
        return rendered


def _asof(request: Request) -> AsOfPages:
    return app_state(request).asof


def _moment_and_label(request: Request) -> tuple[datetime, str]:
    cache = _asof(request)
    moment = parse_moment(request.path_params["moment"], cache.services)
    label = validate_label(request.path_params.get("label", DEFAULT_LABEL))
    return moment, label


async def index(request: Request) -> Response:
    moment, label = _moment_and_label(request)
    if not await label_exists(app_state(request).pages, label):
        return _no_label(label)
    return _serve(request, await run_in_threadpool(_asof(request).index, moment, label))


async def project(request: Request) -> Response:
    moment, label = _moment_and_label(request)
    if not await label_exists(app_state(request).pages, label):
        return _no_label(label)
    name: str = request.path_params["name"]
    if (redirect := canonical_redirect(request, name)) is not None:
        return redirect
    normalized = name
    # /as-of/<t>/simple/<name>/ is four levels below the root; a label adds two.
    root = "../" * (4 if "label" not in request.path_params else 6)
    pages = await run_in_threadpool(_asof(request).project, moment, label, normalized, root)
    if pages is None:
        return PlainTextResponse(
            f"no project named {name!r} was listed on this index at {moment:%Y-%m-%dT%H:%M:%SZ}\n",
            status_code=404,
        )
    return _serve(request, pages)


routes = [
    Route("/as-of/{moment}/simple/", index),
    Route("/as-of/{moment}/simple/{name}/", project),
    Route("/as-of/{moment}/simple/{name}", project),
    Route("/as-of/{moment}/label/{label}/simple/", index),
    Route("/as-of/{moment}/label/{label}/simple/{name}/", project),
    Route("/as-of/{moment}/label/{label}/simple/{name}", project),
]
