"""The Jinja2 environment (autoescape on, strict undefined) and the page renderer."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from nightwheels import __version__
from nightwheels.core.sizes import format_size

WEB = Path(__file__).parent
STATIC = WEB / "static"


def _static_version() -> str:
    """A digest of the static files, appended to their URLs so they can be cached for long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


STATIC_VERSION = _static_version()


def filesize(n: int | None) -> str:
    return format_size(n, missing="")


def when(value: datetime | None) -> str:
    """An absolute UTC time, to the minute."""
    if value is None:
        return "never"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def http_url(value: str | None) -> str | None:
    """Only http(s) URLs become links: never ``javascript:`` or ``data:``."""
    if not value:
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("http", "https") and parts.netloc else None


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


env = Environment(
    loader=FileSystemLoader(WEB / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters.update(filesize=filesize, when=when, ago=ago, http_url=http_url, plural=plural)
env.globals.update(version=__version__, static_version=STATIC_VERSION)


def page_root(path: str) -> str:
    """The relative URL from a page to the server root, so links work under any prefix."""
    depth = path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    base = {
        "request": request,
        "root": page_root(request.url.path),
        "user": getattr(request.state, "user", None),
        "csrf": getattr(request.state, "csrf", ""),
        "now": datetime.now(UTC),
        "path": request.url.path,
    }
    body = env.get_template(template).render({**base, **context})
    response = HTMLResponse(body, status_code=status, headers=headers)
    if base["user"] is not None:  # a signed-in page is for one person only
        response.headers["Cache-Control"] = "no-store"
    return response
