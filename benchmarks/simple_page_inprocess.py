"""The read path's framework overhead, in-process (no sockets, no load generator).

A project page of 210 files is rendered once, then served by ASGI calls straight into
(a) the application (a cached page takes the ``CachedPages`` fast lane), (b) the same
application without the fast lane (routing, ``Request`` and ``Response`` objects), and
(c) a bare ASGI app returning the same bytes (the ceiling). Rounds alternate between the
three, so a shared machine's drifting load hits each alike; the figures are the medians of
the per-round ratios. What uvicorn and the socket add is the same for all three, so on a
real server the ratios to the bare app come out higher than these: see simple_page.py.

    .venv/bin/python benchmarks/simple_page_inprocess.py [--requests 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.server.app import create_app
from tests.support.seed import add_file

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
JSON = "application/vnd.pypi.simple.v1+json"


def scope(accept: str | None) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"accept-encoding", b"identity")]
    if accept:
        headers.append((b"accept", accept.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/simple/demo/",
        "raw_path": b"/simple/demo/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("bench", 80),
        "state": {},
    }


async def call(app: App, accept: str | None) -> tuple[int, bytes]:
    status, body = 0, b""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body += message.get("body", b"")

    await app(scope(accept), receive, send)
    return status, body


def bare(pages: dict[str | None, bytes]) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        accept = next((v.decode() for k, v in scope["headers"] if k == b"accept"), None)
        body = pages[accept]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def rate(app: App, accept: str | None, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await call(app, accept)
    return requests / (time.perf_counter() - started)


async def measure(requests: int, rounds: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="nw-inproc-"))
    settings = Settings(data=data)
    settings.data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    fast = create_app(settings)
    services = fast.state.nightwheels.services
    for version in range(70):
        for tag in ("py3-none-any", "cp312-cp312-manylinux_2_17_x86_64", "cp313-cp313-win_amd64"):
            add_file(services, "demo", f"1.0.{version}", tag=tag)
    ordinary = create_app(settings, services)
    ordinary.user_middleware = ordinary.user_middleware[1:]  # without CachedPages
    out: dict[str, Any] = {"files": 210, "requests_per_round": requests, "rounds": rounds}
    async with fast.router.lifespan_context(fast), ordinary.router.lifespan_context(ordinary):
        for kind, accept in (("html", None), ("json", JSON)):
            pages = {accept: (await call(fast, accept))[1]}
            assert (await call(ordinary, accept))[1] == pages[accept]
            ceiling = bare(pages)
            ratios: dict[str, list[float]] = {"fast_lane": [], "ordinary": []}
            rates: dict[str, list[float]] = {"fast_lane": [], "ordinary": [], "bare": []}
            for _ in range(rounds):
                r_bare = await rate(ceiling, accept, requests)
                r_fast = await rate(fast, accept, requests)
                r_ordinary = await rate(ordinary, accept, requests)
                rates["bare"].append(r_bare)
                rates["fast_lane"].append(r_fast)
                rates["ordinary"].append(r_ordinary)
                ratios["fast_lane"].append(r_fast / r_bare)
                ratios["ordinary"].append(r_ordinary / r_bare)
            out[kind] = {
                "page_bytes": len(pages[accept]),
                "median_rps": {k: round(statistics.median(v)) for k, v in rates.items()},
                "ratio_to_bare": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
                "overhead_us": {
                    k: round(
                        1e6 / statistics.median(rates[k]) - 1e6 / statistics.median(rates["bare"]),
                        1,
                    )
                    for k in ("fast_lane", "ordinary")
                },
            }
    services.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = asyncio.run(measure(args.requests, args.rounds))
    out = Path(__file__).parent / "results" / "simple_page_inprocess.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
