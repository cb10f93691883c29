"""Pages anyone can read: home, search, project, freshness dashboard."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from functools import wraps

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from nightwheels.core.names import is_valid_name, normalize_name
from nightwheels.core.verdicts import Verdict
from nightwheels.errors import NotFound
from nightwheels.server.state import app_state
from nightwheels.services import browse, build_verdicts
from nightwheels.web.chart import uploads_chart
from nightwheels.web.security import Endpoint, page, services_of
from nightwheels.web.templating import render

# Public pages change with every upload; let caches keep them briefly, then revalidate.
PUBLIC_CACHE = "max-age=30"


def index_url(request: Request) -> str:
    """The public URL of the simple index, for install instructions."""
    base = services_of(request).settings.base_url or str(request.base_url)
    return base.rstrip("/") + "/simple/"


def _public(response: Response, request: Request) -> Response:
    if request.state.user is None:
        response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


# Pages that summarise the whole index, rendered once per (URL, index serial, minute) for
# visitors who are not signed in: a client looping on one of them costs what a cached
# simple page costs, not a render (issue 19 item 1). The minute bounds how old the ages
# they show ("3 minutes ago") can get. At most this many variants per process.
SHARED_PAGES = 64
_shared: OrderedDict[tuple[object, ...], tuple[bytes, str]] = OrderedDict()
_shared_lock = threading.Lock()


def shared_when_anonymous(fn: Endpoint) -> Endpoint:
    """Serve an anonymous visitor's page from the shared copy while nothing changed."""

    @wraps(fn)
    async def endpoint(request: Request) -> Response:
        if request.state.user is not None or request.method != "GET":
            return await fn(request)
        pages = app_state(request).pages
        key = (
            id(services_of(request)),
            request.url.path,
            request.url.query[:500],
            index_url(request),  # the Host header, unless NIGHTWHEELS_BASE_URL is set
            pages.global_serial,
            int(time.time() // 60),
        )
        with _shared_lock:
            hit = _shared.get(key)
            if hit is not None:
                _shared.move_to_end(key)
        if hit is not None:
            body, media_type = hit
            return Response(body, media_type=media_type, headers={"Cache-Control": PUBLIC_CACHE})
        response = await fn(request)
        if response.status_code == 200 and "set-cookie" not in response.headers:
            with _shared_lock:
                _shared[key] = (bytes(response.body), response.media_type or "text/html")
                while len(_shared) > SHARED_PAGES:
                    _shared.popitem(last=False)
        return response

    return endpoint


@page
@shared_when_anonymous
async def home(request: Request) -> Response:
    services = services_of(request)

    def load() -> browse.HomeView:
        with services.db.read() as session:
            return browse.home(session)

    view = await run_in_threadpool(load)
    return _public(
        render(request, "home.html", {"view": view, "index_url": index_url(request)}), request
    )


@page
@shared_when_anonymous
async def search(request: Request) -> Response:
    services = services_of(request)
    query = request.query_params.get("q", "")

    def load() -> list[browse.ProjectHit]:
        with services.db.read() as session:
            return browse.search(session, query)

    hits = await run_in_threadpool(load)
    return _public(render(request, "search.html", {"query": query, "hits": hits}), request)


@page
async def project(request: Request) -> Response:
    name: str = request.path_params["name"]
    if not is_valid_name(name):
        raise NotFound(f"{name!r} is not a valid project name")
    normalized = normalize_name(name)
    if normalized != name or not request.url.path.endswith("/"):
        return RedirectResponse(
            f"{'../' if request.url.path.endswith('/') else ''}{normalized}/", 301
        )
    services = services_of(request)

    def load() -> tuple[browse.ProjectView | None, list[build_verdicts.Build]]:
        with services.db.read() as session:
            view = browse.project(session, services.settings, normalized, datetime.now(UTC))
            builds = build_verdicts.build_verdicts(session, normalized) if view else []
            return view, builds

    view, builds = await run_in_threadpool(load)
    if view is None:
        raise NotFound(f"there is no project named {normalized!r} on this index")
    context = {
        "project": view,
        "index_url": index_url(request),
        "builds": builds,
        "Verdict": Verdict,
    }
    return _public(render(request, "project.html", context), request)


@page
@shared_when_anonymous
async def freshness(request: Request) -> Response:
    services = services_of(request)
    raw = request.query_params.get("page", "1")
    page_number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 7 else 1

    def load() -> browse.DashboardView:
        with services.db.read() as session:
            return browse.dashboard(session, services.settings, datetime.now(UTC), page_number)

    view = await run_in_threadpool(load)
    chart = uploads_chart(
        view.uploads_per_day, f"Uploads per day, last {len(view.uploads_per_day)} days"
    )
    return _public(render(request, "freshness.html", {"view": view, "chart": chart}), request)
