"""Hostile text from users never becomes markup: yank reasons, organisations, metadata,
search queries, URLs. Checked in the raw HTML (escaping) and in Chromium (nothing runs,
the text reads as typed)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from nightwheels.db.models import Project
from tests.support.server import LiveServer
from tests.support.web import database, upload
from tests.support.wheels import make_wheel, metadata_text

PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">\'"&'
RAW_MARKERS = ("<script>window.__xss", "<img src=x", 'onerror="window')


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("hostile")
    with LiveServer(data=tmp / "data") as server:
        server.cli("user", "create", "mallory", "--organisation", PAYLOAD)
        token = server.token("mallory", "evil")
        meta = metadata_text(
            "evil", "1.0.dev1", extra=f"Summary: {PAYLOAD}\nDescription: {PAYLOAD}\n"
        )
        upload(server, token, make_wheel(tmp, "evil", "1.0.dev1", metadata=meta))
        server.cli("yank", "evil", "1.0.dev1", "--reason", PAYLOAD)
        db = database(server)
        with db.write() as session:
            session.execute(
                update(Project)
                .where(Project.name == "evil")
                .values(repository_url="javascript:window.__xss=3")
            )
        db.dispose()
        yield server


def _assert_escaped(html: str) -> None:
    for marker in RAW_MARKERS:
        assert marker not in html, f"unescaped {marker!r} in the page"


@pytest.mark.parametrize(
    "path",
    ["/project/evil/", "/", "/freshness/", "/search?q=evil"],
)
def test_stored_text_is_escaped(hostile: LiveServer, page: Page, path: str) -> None:
    _assert_escaped(httpx.get(hostile.url + path).text)
    page.goto(hostile.url + path)
    assert page.evaluate("window.__xss") is None


def test_project_page_shows_hostile_text_as_text(hostile: LiveServer, page: Page) -> None:
    page.goto(hostile.url + "/project/evil/")
    page.locator("details.version summary").first.click()
    expect(page.locator("table.files")).to_contain_text(PAYLOAD)  # the yank reason, verbatim
    expect(page.locator(".members")).to_contain_text(PAYLOAD)  # the organisation, verbatim
    # A javascript: repository URL is shown as text, never as a link.
    expect(page.get_by_role("link", name="repository")).to_have_count(0)
    expect(page.locator(".project-head")).to_contain_text("javascript:window.__xss=3")
    html = page.content()
    assert 'href="javascript:' not in html
    assert "Description:" not in html  # metadata is not rendered raw anywhere


def test_reflected_input_is_escaped(hostile: LiveServer, page: Page) -> None:
    page.goto(hostile.url + "/search?" + str(httpx.QueryParams({"q": PAYLOAD})))
    expect(page.get_by_role("heading", level=2)).to_contain_text(PAYLOAD)
    assert page.evaluate("window.__xss") is None
    _assert_escaped(httpx.get(hostile.url + "/search", params={"q": PAYLOAD}).text)
    # A hostile project name in the URL: a 404 page that quotes it as text.
    response = httpx.get(hostile.url + "/project/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E/")
    assert response.status_code == 404
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    _assert_escaped(response.text)


def test_security_headers_on_web_pages(hostile: LiveServer) -> None:
    response = httpx.get(hostile.url + "/project/evil/")
    csp = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
