"""Badges, feeds and stable "latest" URLs: small public reads for READMEs and feed readers.

- ``/badge/<project>/nightly.svg``: nightly freshness ("nightly | 2 days ago");
- ``/badge/<project>/tests.svg``: a downstream's "tests vs nightlies | passing";
- ``/project/<project>/feed.atom``: culprit events, known-bad marks, freshness changes;
- ``/latest/<project>/<tag>`` (and ``/label/<label>/latest/...``): a redirect to the newest
  live file with that wheel tag (``sdist`` for the sdist), for scripts and docs that want
  "tonight's wheel" without parsing an index.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from nightwheels.core.badges import render_badge
from nightwheels.core.feeds import render_atom
from nightwheels.core.names import DEFAULT_LABEL, is_valid_name, normalize_name, validate_label
from nightwheels.errors import InvalidName, NotFound
from nightwheels.server.state import app_state
from nightwheels.services import badges, feeds
from nightwheels.services.listing import file_path

SHORT_CACHE = "public, max-age=300"
MAX_TAG = 200


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    if not is_valid_name(name):
        raise NotFound(f"{name[:100]!r} is not a valid project name")
    return normalize_name(name)


def _svg(badge: badges.Badge) -> Response:
    return Response(
        render_badge(badge.label, badge.message, badge.colour),
        media_type="image/svg+xml",
        headers={"Cache-Control": SHORT_CACHE},
    )


async def nightly_badge(request: Request) -> Response:
    services = app_state(request).services
    name = _name(request)

    def load() -> badges.Badge:
        with services.db.read() as session:
            return badges.freshness_badge(session, services.settings, name, datetime.now(UTC))

    return _svg(await run_in_threadpool(load))


async def tests_badge(request: Request) -> Response:
    services = app_state(request).services
    name = _name(request)

    def load() -> badges.Badge:
        with services.db.read() as session:
            return badges.downstream_badge(session, name, datetime.now(UTC))

    return _svg(await run_in_threadpool(load))


def _base_url(request: Request) -> str:
    settings = app_state(request).services.settings
    return (settings.base_url or str(request.base_url)).rstrip("/")


async def project_feed(request: Request) -> Response:
    services = app_state(request).services
    name = _name(request)
    base = _base_url(request)

    def load() -> bytes:
        with services.db.read() as session:
            entries = feeds.project_entries(session, name, base)
        return render_atom(
            f"{base}/project/{name}/feed.atom",
            f"{name} nightlies: downstream regressions and freshness",
            f"{base}/project/{name}/",
            entries,
        )

    body = await run_in_threadpool(load)
    return Response(body, media_type="application/atom+xml", headers={"Cache-Control": SHORT_CACHE})


async def latest(request: Request) -> Response:
    services = app_state(request).services
    name = _name(request)
    tag: str = request.path_params["tag"]
    label = request.path_params.get("label", DEFAULT_LABEL)
    try:
        label = validate_label(label)
    except InvalidName as exc:
        raise NotFound(exc.message) from None
    if len(tag) > MAX_TAG or not tag.isascii():
        return PlainTextResponse("not a wheel tag\n", status_code=404)

    def load() -> str:
        with services.db.read() as session:
            found = badges.latest_file(session, name, label, tag)
            return file_path(found.sha256, found.filename)

    path = await run_in_threadpool(load)
    return RedirectResponse(
        f"{_base_url(request)}/{path}", status_code=302, headers={"Cache-Control": "no-cache"}
    )


routes = [
    Route("/badge/{name}/nightly.svg", nightly_badge),
    Route("/badge/{name}/tests.svg", tests_badge),
    Route("/project/{name}/feed.atom", project_feed),
    Route("/latest/{name}/{tag}", latest),
    Route("/label/{label}/latest/{name}/{tag}", latest),
]
