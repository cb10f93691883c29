"""File bytes and PEP 658 metadata: immutable, content-addressed URLs."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from nightwheels.core.negotiation import etag_matches
from nightwheels.server.pages import PageCache
from nightwheels.server.state import app_state
from nightwheels.services import listing
from nightwheels.services.context import Services
from nightwheels.storage.base import blob_key

IMMUTABLE = "public, max-age=31536000, immutable"
GONE = "the file's bytes are no longer stored\n"
METADATA_SUFFIX = ".metadata"


FileInfo = tuple[str, int, str | None]  # sha256, size, metadata sha256


class FileLookup:
    """URL to file, cached per process.

    The bytes behind a URL never change, but whether they are served does: a quarantine
    (PEP 792) withholds them, gc forgets the row. Every such change bumps the project's
    serial, so an entry holds while the serial this process knows for its project (its own
    changes at once, other processes' from the serial poll, as the simple pages learn them)
    is not newer than the serial it was read at.
    """

    MAX_ENTRIES = 65536

    def __init__(self, services: Services, pages: PageCache) -> None:
        self.services = services
        self.pages = pages
        self._cache: dict[tuple[str, str], listing.FileLocation] = {}

    def cached(self, digest: str, filename: str) -> listing.FileLocation | None:
        """A current entry (no I/O), else ``None``."""
        hit = self._cache.get((digest, filename))
        if hit is not None and self.pages.serials.get(hit.project, -1) <= hit.serial:
            return hit
        return None

    def __call__(self, digest: str, filename: str) -> listing.FileLocation | None:
        hit = self.cached(digest, filename)
        if hit is not None:
            return hit
        with self.services.db.read() as session:
            found = listing.find_file(session, digest, filename)
        key = (digest, filename)
        if found is None:
            self._cache.pop(key, None)
            return None
        if len(self._cache) >= self.MAX_ENTRIES:
            self._cache.clear()
        self._cache[key] = found
        return found


async def serve_file(request: Request) -> Response:
    state = app_state(request)
    services = state.services
    digest: str = request.path_params["digest"]
    filename: str = request.path_params["filename"]
    want_metadata = filename.endswith(METADATA_SUFFIX)
    if want_metadata:
        filename = filename[: -len(METADATA_SUFFIX)]
    if len(digest) < 16 or any(c not in "0123456789abcdef" for c in digest):
        return PlainTextResponse("not found\n", status_code=404)
    lookup = state.file_lookup
    found = lookup.cached(digest, filename) or await run_in_threadpool(lookup, digest, filename)
    if found is None:
        return PlainTextResponse("not found\n", status_code=404)
    listing.check_offered(found.project, found.status, found.status_reason)
    return await blob_response(
        request,
        services,
        (found.sha256, found.size, found.metadata_sha256),
        filename,
        want_metadata,
    )


async def blob_response(
    request: Request,
    services: Services,
    found: FileInfo,
    filename: str,
    want_metadata: bool,
) -> Response:
    """The bytes of a file (or its PEP 658 metadata), from disk, by redirect or streamed."""
    sha256, size, metadata_sha256 = found
    if want_metadata:
        if metadata_sha256 is None:
            return PlainTextResponse("this file has no separate metadata\n", status_code=404)
        sha256 = metadata_sha256
        media_type = "text/plain; charset=utf-8"
        size = -1
    else:
        media_type = "application/octet-stream"
    key = blob_key(sha256)
    headers = {"ETag": f'"{sha256}"', "Cache-Control": IMMUTABLE}
    if_none_match = request.headers.get("if-none-match")
    if if_none_match and etag_matches(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    store = services.store
    if services.settings.redirect_files:
        name = filename + METADATA_SUFFIX if want_metadata else filename
        redirect = store.url(key, name)
        if redirect:
            return RedirectResponse(redirect, status_code=302)
    path = store.local_path(key)
    if path is not None:
        if not path.is_file():
            return PlainTextResponse(GONE, status_code=410)
        return FileResponse(path, media_type=media_type, headers=headers, stat_result=None)
    # An object store: start the read off the event loop, so a missing blob is a 410
    # before any header is sent, then stream the body through.
    opener = getattr(store, "open", None)
    try:
        if opener is not None:
            size, chunks = await run_in_threadpool(opener, key)
        else:
            chunks = await run_in_threadpool(store.iter_chunks, key)
    except FileNotFoundError:
        return PlainTextResponse(GONE, status_code=410)
    if size >= 0:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


routes = [Route("/files/{digest}/{filename}", serve_file)]
