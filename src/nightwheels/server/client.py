"""``/-/client/``: the nightwheels client this server runs, pinned by its sha256.

Every install line nightwheels prints or generates points here (never at PyPI, where the
name is not ours). ``/-/client/`` describes the wheel (JSON), ``/-/client/requirement.txt``
is the pinned requirement for ``pip install -r``, ``/-/client/<filename>`` is the wheel.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from nightwheels import __version__
from nightwheels.errors import NotFound
from nightwheels.server.state import app_state
from nightwheels.services.client_dist import ClientWheel, client_requirement, client_wheel

PREFIX = "/-/client/"


def _base(request: Request) -> str:
    services = app_state(request).services
    return (services.settings.base_url or str(request.base_url)).rstrip("/")


async def _wheel_and_url(request: Request) -> tuple[ClientWheel, str]:
    wheel = await run_in_threadpool(client_wheel)
    return wheel, f"{_base(request)}{PREFIX}{wheel.filename}"


async def describe(request: Request) -> Response:
    wheel, url = await _wheel_and_url(request)
    requirement = client_requirement(url, wheel)
    return JSONResponse(
        {
            "name": "nightwheels",
            "version": __version__,
            "filename": wheel.filename,
            "url": url,
            "sha256": wheel.sha256,
            "size": wheel.size,
            "requirement": requirement,
            "install": f'pip install "{requirement}"',
        },
        headers={"Cache-Control": "no-cache"},
    )


async def requirement(request: Request) -> Response:
    wheel, url = await _wheel_and_url(request)
    return PlainTextResponse(
        client_requirement(url, wheel) + "\n", headers={"Cache-Control": "no-cache"}
    )


async def download(request: Request) -> Response:
    wheel = await run_in_threadpool(client_wheel)
    if request.path_params["filename"] != wheel.filename:
        raise NotFound(f"this server offers its own client only: {wheel.filename} (see {PREFIX})")
    return Response(
        wheel.data,
        media_type="application/octet-stream",
        headers={"ETag": f'"{wheel.sha256}"', "Cache-Control": "no-cache"},
    )


routes = [
    Route(PREFIX, describe, methods=["GET", "HEAD"]),
    Route(PREFIX + "requirement.txt", requirement, methods=["GET", "HEAD"]),
    Route(PREFIX + "{filename}", download, methods=["GET", "HEAD"]),
]
