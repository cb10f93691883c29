"""The Simple Repository API read path: /simple/ and /label/<label>/simple/."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

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


def _serve(request: Request, pages: dict[str, Page], media_type: str | None = None) -> Response:
    media_type = media_type or _media_type(request)
    if media_type is None:
        return PlainTextResponse(NOT_ACCEPTABLE, status_code=406)
    page = pages[media_type]
    body = page.body
    # Each representation has its own strong ETag: gzip bytes are not the identity bytes.
    gzipped = len(body) > 512 and accepts_gzip(request.headers.get("accept-encoding"))
    etag = page.gzip_etag if gzipped else page.etag
    headers = {"ETag": etag, "Cache-Control": PAGE_CACHE_CONTROL, "Vary": VARY}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    if gzipped:
        body = page.gzipped
        headers["Content-Encoding"] = "gzip"
    content_type = media_type + ("; charset=utf-8" if media_type == "text/html" else "")
    return Response(body, headers=headers, media_type=content_type)


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
