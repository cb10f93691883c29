"""The preview index of an open upload session: ``/session/<id>/simple/``.

The project page as it will read once the session is published (the label's live files
plus the session's), so CI can install-test tonight's set before anyone else sees it.
The session id is unguessable (144 random bits) but not a credential: a preview shows
nothing that publishing would not show to everyone.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from nightwheels.core.simple_pages import (
    HTML_TYPE,
    JSON_TYPE,
    render_index_html,
    render_index_json,
    render_project_html,
    render_project_json,
)
from nightwheels.errors import NotFound
from nightwheels.server.files import METADATA_SUFFIX, blob_response
from nightwheels.server.simple import _media_type, canonical_redirect
from nightwheels.server.state import app_state
from nightwheels.services import upload_sessions
from nightwheels.services.context import Services

_NO_STORE = {"Cache-Control": "no-store", "Vary": "Accept"}


def _services(request: Request) -> Services:
    return app_state(request).services


def _page(media_type: str | None, html: bytes, json: bytes) -> Response:
    if media_type is None:
        return PlainTextResponse("cannot serve any of the requested media types\n", 406)
    if media_type == JSON_TYPE:
        return Response(json, media_type=JSON_TYPE, headers=_NO_STORE)
    content_type = "text/html; charset=utf-8" if media_type == "text/html" else HTML_TYPE
    return Response(html, media_type=content_type, headers=_NO_STORE)


async def preview_index(request: Request) -> Response:
    session_id: str = request.path_params["session"]
    try:
        names = await run_in_threadpool(
            upload_sessions.preview_projects, _services(request), session_id
        )
    except NotFound as exc:
        return PlainTextResponse(exc.message + "\n", status_code=404)
    return _page(_media_type(request), render_index_html(names), render_index_json(names))


async def preview_project(request: Request) -> Response:
    session_id: str = request.path_params["session"]
    name: str = request.path_params["name"]
    if (redirect := canonical_redirect(request, name)) is not None:
        return redirect
    try:
        found = await run_in_threadpool(
            upload_sessions.preview_listing,
            _services(request),
            session_id,
            name,
            root="../../../../",
        )
    except NotFound as exc:
        return PlainTextResponse(exc.message + "\n", status_code=404)
    if found is None:
        return PlainTextResponse(f"no project named {name!r} in this session\n", 404)
    return _page(_media_type(request), render_project_html(found), render_project_json(found))


async def preview_file(request: Request) -> Response:
    session_id: str = request.path_params["session"]
    filename: str = request.path_params["filename"]
    want_metadata = filename.endswith(METADATA_SUFFIX)
    if want_metadata:
        filename = filename.removesuffix(METADATA_SUFFIX)
    try:
        row = await run_in_threadpool(
            upload_sessions.pending_file, _services(request), session_id, filename
        )
    except NotFound as exc:
        return PlainTextResponse(exc.message + "\n", status_code=404)
    if not row.sha256.startswith(request.path_params["digest"]):
        return PlainTextResponse("not found\n", status_code=404)
    return await blob_response(
        request,
        _services(request),
        (row.sha256, row.size, row.metadata_sha256),
        filename,
        want_metadata,
    )


routes = [
    Route("/session/{session}/simple/", preview_index),
    Route("/session/{session}/simple/{name}/", preview_project),
    Route("/session/{session}/simple/{name}", preview_project),
    Route("/session/{session}/files/{digest}/{filename}", preview_file),
]
