"""Accessibility basics of the public pages: labels, contrast, keyboard, phones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import LiveServer
from tests.support.web import backdate, publish
from tests.web.a11y import focus_is_visible, overflows_horizontally, problems

PAGES = ["/", "/project/long-project-name-for-phones/", "/freshness/", "/search?q=long"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("a11y")
    with LiveServer(data=tmp / "data") as server:
        server.create_user("alice")
        token = server.token("alice", "long-project-name-for-phones", "other")
        publish(
            server,
            token,
            tmp,
            "long-project-name-for-phones",
            "10.0.0.dev20261126123456",
            "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64",
            "cp313-cp313t-musllinux_1_2_aarch64",
        )
        publish(server, token, tmp, "other", "1.0.dev0")
        backdate(server, "other", 27)
        server.cli("yank", "other", "1.0.dev0", "--reason", "bad build")
        yield server


@pytest.mark.parametrize("path", PAGES)
def test_labels_contrast_landmarks(site: LiveServer, page: Page, path: str) -> None:
    page.goto(site.url + path)
    page.locator("details.version summary").evaluate_all("els => els.forEach(e => e.click())")
    assert problems(page) == []


@pytest.mark.parametrize("path", PAGES)
def test_readable_on_a_phone(site: LiveServer, browser: Browser, path: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(site.url + path)
        assert not overflows_horizontally(page), "the page scrolls sideways on a phone"
        font = page.locator("main p, main td, main li").first.evaluate(
            "e => getComputedStyle(e).fontSize"
        )
        assert float(font.removesuffix("px")) >= 14
    finally:
        context.close()


def test_keyboard_navigation(site: LiveServer, page: Page) -> None:
    page.goto(site.url + "/project/other/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # the skip link appears when focused
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # From the content, Tab reaches the version and opens it with the keyboard alone.
    summary = page.locator("details.version summary").first
    for _ in range(20):
        page.keyboard.press("Tab")
        if summary.evaluate("e => e === document.activeElement"):
            break
    expect(summary).to_be_focused()
    assert focus_is_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("details.version").first).not_to_have_attribute("open", "")
    page.keyboard.press("Enter")
    expect(page.locator("details.version").first).to_have_attribute("open", "")
    # Search from the keyboard.
    page.get_by_label("Search projects").focus()
    assert focus_is_visible(page)
    page.keyboard.type("other")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="other")).to_be_visible()
