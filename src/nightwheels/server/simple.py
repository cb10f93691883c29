"""The Simple Repository API read path: /simple/ and /label/<label>/simple/."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from nightwheels.core.names import DEFAULT_LABEL, is_valid_name, normalize_name, validate_label
from nightwheels.core.negotiation import (
    accepts_gzip,
    choose_media_type,
    etag_matches,
    format_media_type,
)
from nightwheels.core.simple_pages import HTML_TYPE
from nightwheels.errors import InvalidName
from nightwheels.server.pages import Page, PageCache, page_kind
from nightwheels.server.state import app_state

# Nightly filenames are reused, so pages must be revalidated, not kept for hours.
PAGE_CACHE_CONTROL = "max-age=60, must-revalidate"
VARY = "Accept, Accept-Encoding"
NOT_ACCEPTABLE = (
    "cannot serve any of the requested media types; this index serves "
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html and text/html\n"
)


def _media_type(request: Request) -> str | None:
    fmt = request.query_params.get("format")
    if fmt is not None:  # PyPI's override of Accept
        return format_media_type(fmt)
    return choose_media_type(request.headers.get("accept"))


def representation(
    page: Page, media_type: str, accept_encoding: str | None, if_none_match: str | None
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, body and headers of one page for a request: its variant (each has its own
    strong ETag: gzip bytes are not the identity bytes), or a 304 when the client has it."""
    body = page.body
    gzipped = len(body) > 512 and accepts_gzip(accept_encoding)
    etag = page.gzip_etag if gzipped else page.etag
    headers = [
        (b"etag", etag.encode()),
        (b"cache-control", PAGE_CACHE_CONTROL.encode()),
        (b"vary", VARY.encode()),
    ]
    if if_none_match and etag_matches(if_none_match, etag):
        return 304, b"", headers
    if gzipped:
        body = page.gzipped
        headers.append((b"content-encoding", b"gzip"))
    content_type = media_type + ("; charset=utf-8" if media_type == "text/html" else "")
    headers.append((b"content-type", content_type.encode()))
    headers.append((b"content-length", str(len(body)).encode()))
    return 200, body, headers


def _serve(request: Request, pages: dict[str, Page], media_type: str | None = None) -> Response:
    media_type = media_type or _media_type(request)
    if media_type is None:
        return PlainTextResponse(NOT_ACCEPTABLE, status_code=406)
    status, body, headers = representation(
        pages[media_type],
        media_type,
        request.headers.get("accept-encoding"),
        request.headers.get("if-none-match"),
    )
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response


def _cache(request: Request) -> PageCache:
    return app_state(request).pages


def canonical_redirect(request: Request, name: str) -> Response | None:
    """404 for an invalid name, 301 to the normalised name with a trailing slash (PEP 503),
    or ``None`` when ``name`` is already the page's canonical name."""
    if not is_valid_name(name):
        return PlainTextResponse(f"{name!r} is not a valid project name\n", status_code=404)
    normalized = normalize_name(name)
    if normalized != name or not request.url.path.endswith("/"):
        target = request.url.path.rsplit(name, 1)[0] + normalized + "/"
        if request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(target, status_code=301)
    return None


def _no_label(label: str) -> Response:
    return PlainTextResponse(f"no label {label[:64]!r} on this index\n", status_code=404)


async def label_exists(cache: PageCache, label: str) -> bool:
    """Whether ``label`` has files: any other label is a 404 that stores nothing."""
    if label == DEFAULT_LABEL:
        return True
    try:
        validate_label(label)
    except InvalidName:
        return False
    known = cache.label_known(label)
    return known if known is not None else await run_in_threadpool(cache.has_label, label)


async def index(request: Request) -> Response:
    label = request.path_params.get("label", DEFAULT_LABEL)
    cache = _cache(request)
    if not await label_exists(cache, label):
        return _no_label(label)
    pages = cache.cached_index(label) or await run_in_threadpool(cache.index, label)
    return _serve(request, pages)


async def project(request: Request) -> Response:
    name: str = request.path_params["name"]
    label = request.path_params.get("label", DEFAULT_LABEL)
    cache = _cache(request)
    if not await label_exists(cache, label):
        return _no_label(label)
    if (redirect := canonical_redirect(request, name)) is not None:
        return redirect
    normalized = name
    root = "../../" if "label" not in request.path_params else "../../../../"
    media_type = _media_type(request)
    kind = page_kind(media_type or HTML_TYPE)  # none acceptable: 404 or 406, as it exists
    # A current page is served without leaving the event loop; a miss reads the database
    # and renders in the thread pool (a network round trip with PostgreSQL).
    pages = None
    if cache.knows(normalized):
        pages = cache.cached_project(label, normalized, root, kind) or await run_in_threadpool(
            cache.project, label, normalized, root, kind
        )
    if pages is None:
        return PlainTextResponse(f"no project named {name!r} on this index\n", status_code=404)
    return _serve(request, pages, media_type)


routes = [
    Route("/simple/", index),
    Route("/simple/{name}/", project),
    Route("/simple/{name}", project),
    Route("/label/{label}/simple/", index),
    Route("/label/{label}/simple/{name}/", project),
    Route("/label/{label}/simple/{name}", project),
]


class CachedPages:
    """The read path's fast lane (ASGI middleware): a ``GET /simple/<name>/`` whose page is
    rendered and current is answered from the scope, without routing, ``Request`` or
    ``Response`` objects; the bytes and headers are those of :func:`representation`, as on
    the ordinary path. Anything else (a miss, a redirect, a query string, a label, nothing
    acceptable) goes the ordinary way."""

    PREFIX = "/simple/"

    def __init__(self, app: ASGIApp, pages: PageCache, extra_headers: list[tuple[bytes, bytes]]):
        self.app = app
        self.pages = pages
        self.extra_headers = extra_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and not scope["query_string"]
            and (path := scope["path"]).startswith(self.PREFIX)
            and path.endswith("/")
            and len(path) > len(self.PREFIX) + 1
            and await self._serve(path[len(self.PREFIX) : -1], scope, send)
        ):
            return
        await self.app(scope, receive, send)

    async def _serve(self, name: str, scope: Scope, send: Send) -> bool:
        if name not in self.pages.serials:  # known names are canonical: no redirect due
            return False
        accept = accept_encoding = if_none_match = None
        for key, value in scope["headers"]:
            if key == b"accept":
                accept = value.decode("latin-1")
            elif key == b"accept-encoding":
                accept_encoding = value.decode("latin-1")
            elif key == b"if-none-match":
                if_none_match = value.decode("latin-1")
        media_type = choose_media_type(accept)
        if media_type is None:
            return False
        cached = self.pages.cached_project(DEFAULT_LABEL, name, "../../", page_kind(media_type))
        if cached is None:
            return False
        status, body, headers = representation(
            cached[media_type], media_type, accept_encoding, if_none_match
        )
        headers += self.extra_headers
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True
