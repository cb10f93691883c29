"""A bare ASGI app on uvicorn serving the same page bytes: the ceiling of the simple-page
benchmark (what uvicorn and the protocol cost with no framework at all).

``BARE_PAGE_DIR`` holds ``page.html`` and ``page.json``; ``Accept`` containing ``json``
gets the JSON bytes. Run: ``python -m uvicorn benchmarks._bare_asgi:app``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_DIR = Path(os.environ["BARE_PAGE_DIR"])
_HTML = _DIR.joinpath("page.html").read_bytes()
_JSON = _DIR.joinpath("page.json").read_bytes()
_HEADERS = {
    False: [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(_HTML)).encode()),
    ],
    True: [
        (b"content-type", b"application/vnd.pypi.simple.v1+json"),
        (b"content-length", str(len(_JSON)).encode()),
    ],
}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    wants_json = any(k == b"accept" and b"json" in v for k, v in scope["headers"])
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS[wants_json]})
    await send({"type": "http.response.body", "body": _JSON if wants_json else _HTML})
