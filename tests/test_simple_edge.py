"""The simple pages' edge, in-process: unknown labels store nothing, ETags per
representation with RFC 9110 If-None-Match, and the PEP 691 negotiation table."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from nightwheels.core.negotiation import choose_media_type, etag_matches
from nightwheels.core.simple_pages import HTML_TYPE, JSON_TYPE, LEGACY_HTML_TYPE
from tests.support.seed import add_file
from tests.test_server_edge import drive, make_app

MiB = 1024 * 1024
LATEST_JSON = "application/vnd.pypi.simple.latest+json"
LATEST_HTML = "application/vnd.pypi.simple.latest+html"
PIP = f"{JSON_TYPE}, {HTML_TYPE};q=0.1, text/html;q=0.01"


@pytest.fixture
def app(tmp_path: Path) -> Starlette:
    app = make_app(tmp_path)
    services = app_state_of(app).services
    for version in range(40):  # a page over 512 bytes: served gzipped on request
        add_file(services, "demo", f"1.0.{version}")
    add_file(services, "demo", "2.0", label="nightly")
    return app


def app_state_of(app: Starlette):  # type: ignore[no-untyped-def]
    return app.state.nightwheels


async def _status(app: Starlette, path: str) -> int:
    """GET ``path`` straight through the ASGI interface: no client whose own caches
    (urllib keeps the last URLs it parsed) would count in the measurement."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1234),
        "server": ("test", 80),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]

    await app(scope, receive, send)
    return status


def test_unknown_labels_are_404_and_store_nothing(app: Starlette) -> None:
    """Issue 14 item 3: 8,000 distinct unknown labels (and 500 of 30,000 characters) grow
    memory by less than 5 MiB; before, each was a 200 and a cache entry kept for ever."""
    state = app_state_of(app)

    async def run(http: httpx.AsyncClient) -> tuple[list[int], int]:
        statuses = [
            await _status(app, "/label/nightly/simple/"),
            await _status(app, "/label/nightly/simple/demo/"),
            await _status(app, "/label/nope/simple/"),
            await _status(app, "/label/nope/simple/demo/"),
            await _status(app, "/as-of/2026-12-01T00:00:00Z/label/nope/simple/"),
        ]
        # One of each shape first: what is built once (the lazily made JSON API, imports)
        # is not what is measured; measured alone the test saw 7 MiB of it.
        for path in (
            "/label/warm-x/simple/",
            "/label/warm-y/simple/demo/",
            "/label/" + "w" * 30000 + "/simple/",
        ):
            assert await _status(app, path) == 404
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(8000):
            assert await _status(app, f"/label/unknown-{i:05d}-{'x' * 40}/simple/") == 404
            if i % 2:
                assert await _status(app, f"/label/unknown-{i:05d}/simple/demo/") == 404
        for i in range(500):
            assert await _status(app, f"/label/{i}{'y' * 30000}/simple/") == 404
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        return statuses, growth

    statuses, growth = drive(app, run)
    assert statuses == [200, 200, 404, 404, 404]
    print(f"8,000 unknown labels + 500 of 30,000 characters: {growth / MiB:.2f} MiB")
    assert growth < 5 * MiB
    assert set(state.pages._indexes) <= {"main", "nightly"}
    assert {key[0] for key in state.pages._projects} <= {"main", "nightly"}


def test_a_new_label_is_found_after_a_change(app: Starlette) -> None:
    state = app_state_of(app)

    async def run(http: httpx.AsyncClient) -> list[int]:
        first = (await http.get("/label/later/simple/")).status_code
        add_file(state.services, "demo", "3.0", label="later")
        await_refresh = state.pages.refresh  # what the serial poll does
        await_refresh()
        return [first, (await http.get("/label/later/simple/demo/")).status_code]

    assert drive(app, run) == [404, 200]


def test_etags_per_representation_and_if_none_match_as_a_list(app: Starlette) -> None:
    """Issue 14 item 12."""

    async def run(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
        gz, plain = {"Accept-Encoding": "gzip"}, {"Accept-Encoding": "identity"}
        zipped = await http.get("/simple/demo/", headers=gz)
        identity = await http.get("/simple/demo/", headers=plain)
        zipped_tag, identity_tag = zipped.headers["etag"], identity.headers["etag"]

        async def get(headers: dict[str, str], match: str) -> httpx.Response:
            return await http.get("/simple/demo/", headers={**headers, "If-None-Match": match})

        return {
            "zipped": zipped,
            "identity": identity,
            "gzip tag, gzip": await get(gz, zipped_tag),
            "identity tag, identity": await get(plain, identity_tag),
            "identity tag, gzip": await get(gz, identity_tag),
            "gzip tag, identity": await get(plain, zipped_tag),
            "gzip q=0": await get({"Accept-Encoding": "gzip;q=0"}, zipped_tag),
            "substring": await get(plain, f"garbage{identity_tag}garbage"),
            "list": await get(plain, f'"other", W/{identity_tag}'),
            "star": await get(plain, "*"),
        }

    r = drive(app, run)
    assert r["zipped"].headers["content-encoding"] == "gzip"
    assert "content-encoding" not in r["identity"].headers
    assert r["zipped"].headers["etag"] != r["identity"].headers["etag"]
    statuses = {what: response.status_code for what, response in r.items()}
    assert statuses == {
        "zipped": 200,
        "identity": 200,
        "gzip tag, gzip": 304,
        "identity tag, identity": 304,
        "identity tag, gzip": 200,
        "gzip tag, identity": 200,
        "gzip q=0": 200,
        "substring": 200,
        "list": 304,
        "star": 304,
    }
    assert r["gzip q=0"].headers.get("content-encoding") is None


@pytest.mark.parametrize(
    ("header", "tag", "matches"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"b", "a"', '"a"', True),
        ('"a,b"', '"a"', False),
        ('x"a"x', '"a"', False),
        ('"a" junk', '"a"', False),
        ("*", '"a"', True),
        ("", '"a"', False),
        ('"b",', '"a"', False),
    ],
)
def test_if_none_match_parsing(header: str, tag: str, matches: bool) -> None:
    assert etag_matches(header, tag) is matches


# PEP 691's negotiation, with the latest aliases: Accept -> what is served (None: 406).
NEGOTIATION = [
    (None, LEGACY_HTML_TYPE),
    ("", LEGACY_HTML_TYPE),
    (JSON_TYPE, JSON_TYPE),
    (HTML_TYPE, HTML_TYPE),
    (LATEST_JSON, JSON_TYPE),
    (LATEST_HTML, HTML_TYPE),
    ("text/html", LEGACY_HTML_TYPE),
    ("*/*", LEGACY_HTML_TYPE),
    ("text/*", LEGACY_HTML_TYPE),
    ("application/*", JSON_TYPE),
    (PIP, JSON_TYPE),
    (f"{LATEST_JSON};q=0.5, {LATEST_HTML}", HTML_TYPE),
    (f"text/html, {JSON_TYPE}", JSON_TYPE),  # equal q: the server's preference
    (f"{HTML_TYPE};q=0.2, {JSON_TYPE};q=0.1", HTML_TYPE),
    (f"{JSON_TYPE};q=0, text/html;q=0.5", LEGACY_HTML_TYPE),
    (f"{LATEST_JSON};q=0", None),
    ("application/json", None),
    ("image/png, text/plain", None),
    ("text/html;q=nan", None),
    ("text/html;q=2", None),
    (f"{JSON_TYPE.upper()}", JSON_TYPE),
    ("image/png;q=1, */*;q=0.1", LEGACY_HTML_TYPE),
]


@pytest.mark.parametrize(("accept", "served"), NEGOTIATION)
def test_negotiation_table(accept: str | None, served: str | None) -> None:
    """Issue 16 item 7."""
    assert choose_media_type(accept) == served
    if accept:
        assert choose_media_type(accept + " " * 300) == served  # uncached path: same answer


def test_latest_and_format_override_served(app: Starlette) -> None:
    async def run(http: httpx.AsyncClient) -> list[tuple[int, str]]:
        requests = [
            ("/simple/demo/", LATEST_JSON),
            ("/simple/demo/", LATEST_HTML),
            ("/simple/", LATEST_JSON),
            (f"/simple/demo/?format={LATEST_JSON.replace('+', '%2B')}", "text/html"),
            (f"/simple/demo/?format={LATEST_HTML.replace('+', '%2B')}", JSON_TYPE),
            ("/simple/demo/?format=json", "text/html"),
            ("/simple/demo/?format=text/html", JSON_TYPE),
            ("/simple/demo/?format=bogus", JSON_TYPE),
            ("/simple/demo/", "application/json"),
        ]
        out = []
        for url, accept in requests:
            response = await http.get(url, headers={"Accept": accept})
            out.append((response.status_code, response.headers.get("content-type", "")))
        return out

    assert drive(app, run) == [
        (200, JSON_TYPE),
        (200, HTML_TYPE),
        (200, JSON_TYPE),
        (200, JSON_TYPE),
        (200, HTML_TYPE),
        (200, JSON_TYPE),
        (200, "text/html; charset=utf-8"),
        (406, "text/plain; charset=utf-8"),
        (406, "text/plain; charset=utf-8"),
    ]


def test_the_fast_lane_answers_as_the_ordinary_path(app: Starlette) -> None:
    """Issue 18 item 7: a cached page is served by ``CachedPages`` without routing; every
    header and byte is what the ordinary path sends (the first request renders the page)."""
    variants = [
        {},
        {"Accept": JSON_TYPE},
        {"Accept": PIP, "Accept-Encoding": "gzip"},
        {"Accept-Encoding": "gzip, deflate"},
    ]

    async def run(http: httpx.AsyncClient) -> list[tuple[httpx.Response, httpx.Response]]:
        pairs = []
        for headers in variants:
            first = await http.get("/simple/demo/", headers=headers)  # renders: ordinary path
            again = await http.get("/simple/demo/", headers=headers)  # cached: the fast lane
            pairs.append((first, again))
            match = {**headers, "If-None-Match": first.headers["etag"]}
            pairs.append(
                (
                    await http.get("/simple/demo/?x=1", headers=match),  # a query: ordinary
                    await http.get("/simple/demo/", headers=match),
                )
            )
        return pairs

    routed: list[bytes] = []  # the query strings of requests that reached the router
    inner = app.router.middleware_stack

    async def spy(scope, receive, send):  # type: ignore[no-untyped-def]
        routed.append(scope["query_string"])
        await inner(scope, receive, send)

    app.router.middleware_stack = spy
    for ordinary, fast in drive(app, run):
        assert fast.status_code == ordinary.status_code
        assert fast.content == ordinary.content
        assert dict(fast.headers) == dict(ordinary.headers)
    # Only the two renders (HTML, then JSON) took the ordinary path without a query.
    assert routed.count(b"") == 2 and routed.count(b"x=1") == len(variants)
