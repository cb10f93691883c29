"""The public pages in a real headless Chromium: project page, dashboard, home, search."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from nightwheels.web.templating import filesize
from tests.support.server import LiveServer
from tests.support.web import backdate, publish
from tests.web.a11y import problems

LINUX = "cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64"
TAGS = (LINUX, "cp313-cp313-macosx_11_0_arm64", "cp312-cp312-win_amd64")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, Path]]]:
    tmp = tmp_path_factory.mktemp("site")
    with LiveServer(data=tmp / "data") as server:
        server.create_user("alice")
        token = server.token("alice", "fresh-lib", "stale-lib", "gone-lib", "quiet-lib")
        wheels: dict[str, Path] = {}
        old = publish(server, token, tmp, "fresh-lib", "1.0.dev20261101", *TAGS)
        backdate(server, "fresh-lib", 3, "1.0.dev20261101")
        new = publish(server, token, tmp, "fresh-lib", "1.0.dev20261125", *TAGS)
        wheels["old"], wheels["linux"] = old[0], new[0]
        publish(server, token, tmp, "stale-lib", "0.5.dev0")
        backdate(server, "stale-lib", 20)
        publish(server, token, tmp, "gone-lib", "2.0.dev0")
        backdate(server, "gone-lib", 45)
        server.cli("yank", "fresh-lib", "1.0.dev20261101", "--reason", "broken ABI")
        report = server.cli(
            "token", "create", "--user", "alice", "--permission", "report", "--name", "report"
        ).stdout.strip()
        # Only a downstream's members report for it: alice's other projects stand in.
        _report(server, report, "stale-lib", "passed", wheels["linux"], False)
        _report(server, report, "gone-lib", "failed", wheels["linux"], True)
        yield server, wheels


def _report(
    server: LiveServer, token: str, downstream: str, outcome: str, wheel: Path, culprit: bool
) -> None:
    """What ``nightwheels report --server`` posts after a downstream test run."""
    response = httpx.post(
        f"{server.url}/api/v1/compat/results",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "downstream": downstream,
            "outcome": outcome,
            "python": "3.13.1",
            "platform": "linux-x86_64",
            "tested_at": "2026-11-25T06:00:00+00:00",
            "repository": f"https://github.com/example/{downstream}",
            "culprits": ["fresh-lib"] if culprit else [],
            "nightlies": [
                {
                    "project": "fresh-lib",
                    "version": "1.0.dev20261125",
                    "filename": wheel.name,
                    "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                }
            ],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["recorded"]


def test_project_page_shows_an_uploaded_wheel(
    site: tuple[LiveServer, dict[str, Path]], page: Page
) -> None:
    server, wheels = site
    page.goto(f"{server.url}/project/Fresh_Lib")  # not normalised: redirected
    assert page.url == f"{server.url}/project/fresh-lib/"
    expect(page.get_by_role("heading", level=1)).to_contain_text("fresh-lib")
    newest = page.locator("details.version").first
    expect(newest.locator(".version-name")).to_have_text("1.0.dev20261125")
    row = newest.locator("tr", has=page.get_by_role("link", name=wheels["linux"].name))
    expect(row).to_contain_text("Linux x86-64, CPython 3.13")
    expect(row).to_contain_text(hashlib.sha256(wheels["linux"].read_bytes()).hexdigest()[:12])
    expect(row).to_contain_text(filesize(wheels["linux"].stat().st_size))
    expect(newest).to_contain_text("Windows x86-64, CPython 3.12")
    expect(newest).to_contain_text("macOS Apple silicon, CPython 3.13")
    # The link downloads the very bytes that were uploaded.
    href = row.get_by_role("link", name=wheels["linux"].name).get_attribute("href")
    assert href is not None
    download = httpx.get(page.url + href.split("#")[0], follow_redirects=True)
    assert download.content == wheels["linux"].read_bytes()
    # Older version: collapsed, marked yanked with its reason; members and freshness shown.
    older = page.locator("details.version").nth(1)
    expect(older.locator(".version-name")).to_have_text("1.0.dev20261101")
    expect(older.locator("summary .yanked")).to_have_text("yanked")
    older.locator("summary").click()
    expect(older).to_contain_text("broken ABI")
    expect(page.locator("#members + ul")).to_contain_text("alice")
    expect(page.locator(".freshness")).to_contain_text("older wheels expire in 30 days")
    # The compatibility record: downstream results with this project's nightlies.
    compat = page.locator("table.compat tbody tr")
    expect(compat).to_have_count(2)
    expect(compat.filter(has_text="stale-lib").locator(".badge")).to_have_text("passed")
    failing = compat.filter(has_text="gone-lib")
    expect(failing.locator(".badge").first).to_have_text("failed")
    expect(failing.locator(".badge").nth(1)).to_have_text("culprit")
    expect(page.locator("#compat + p")).to_contain_text("1 pass, 1 failure")
    assert problems(page) == []


def test_dashboard_marks_stale_projects(
    site: tuple[LiveServer, dict[str, Path]], page: Page
) -> None:
    server, _ = site
    page.goto(f"{server.url}/freshness/")
    rows = page.locator("table.dashboard tbody tr")
    names = rows.locator("th").all_inner_texts()
    # Oldest last upload first; a project without uploads comes before all.
    assert names == ["quiet-lib", "gone-lib", "stale-lib", "fresh-lib"]
    stale = rows.filter(has_text="stale-lib")
    expect(stale).to_have_class(re.compile(r"\bis-stale\b"))
    expect(stale.locator(".badge")).to_have_text("stale")
    expect(stale).to_contain_text("in 10 days")
    gone = rows.filter(has_text="gone-lib")
    expect(gone).to_have_class(re.compile(r"\bis-stale\b"))
    expect(gone.locator(".badge")).to_have_text("expired")
    fresh = rows.filter(has_text="fresh-lib")
    expect(fresh).not_to_have_class(re.compile(r"\bis-stale\b"))
    expect(fresh.locator(".badge")).to_have_text("fresh")
    # Highlighted: the stale row is visibly different from the fresh one.
    bg = "el => getComputedStyle(el).backgroundColor"
    assert stale.locator("td").first.evaluate(bg) != fresh.locator("td").first.evaluate(bg)
    expect(page.locator("main p").first).to_contain_text("2 projects are stale now")
    # The chart: 60 daily bars, today's holds the uploads made today.
    bars = page.locator("svg.chart rect.bar")
    expect(bars).to_have_count(60)
    expect(bars.last.locator("title")).to_contain_text(": 3 uploads")


def test_home_install_commands_copy_and_search(
    site: tuple[LiveServer, dict[str, Path]], browser: Browser
) -> None:
    server, _ = site
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        pip = page.locator("#install-pip")
        expect(pip).to_have_text(
            f"pip install --pre --upgrade --extra-index-url {server.url}/simple/ PACKAGE"
        )
        button = page.get_by_role("button", name="Copy: pip command")
        expect(button).to_be_visible()  # shown by copy.js (progressive enhancement)
        button.click()
        expect(button).to_have_text("Copied")
        assert page.evaluate("navigator.clipboard.readText()") == pip.inner_text()
        expect(page.locator("table").first).to_contain_text("fresh-lib")
        page.get_by_label("Search projects").fill("LIB")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=2)).to_have_text("4 results for “LIB”")
        page.get_by_role("link", name="stale-lib").click()
        expect(page).to_have_url(f"{server.url}/project/stale-lib/")
    finally:
        context.close()


def test_without_javascript_pages_still_work(
    site: tuple[LiveServer, dict[str, Path]], browser: Browser
) -> None:
    server, _ = site
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(server.url + "/project/fresh-lib/")
        expect(page.locator(".copy-button").first).to_be_hidden()  # no dead buttons
        expect(page.locator("#install-pip")).to_contain_text("fresh-lib")
        page.goto(server.url + "/freshness/")
        expect(page.locator("svg.chart rect.bar")).to_have_count(60)
    finally:
        context.close()


def test_unknown_project_is_a_404_page(
    site: tuple[LiveServer, dict[str, Path]], browser: Browser
) -> None:
    server, _ = site
    page = browser.new_page()
    try:
        response = page.goto(server.url + "/project/no-such-thing/")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
        expect(page.locator(".error")).to_contain_text("no project named 'no-such-thing'")
    finally:
        page.close()


BROKEN_WORDS = """(id) => {
  // Every character of the command, wherever it sits in the markup.
  const code = document.getElementById(id);
  const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
  const chars = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) chars.push([node, i, node.data[i]]);
  }
  const broken = [];
  let start = 0;
  for (let i = 0; i <= chars.length; i++) {
    if (i < chars.length && chars[i][2] !== ' ') continue;
    if (i > start) {
      const range = document.createRange();
      range.setStart(chars[start][0], chars[start][1]);
      range.setEnd(chars[i - 1][0], chars[i - 1][1] + 1);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(range.toString());
    }
    start = i + 1;
  }
  return broken;
}"""


@pytest.mark.parametrize("width", [320, 375, 600])
def test_install_commands_wrap_only_at_spaces(
    site: tuple[LiveServer, dict[str, Path]], browser: Browser, width: int
) -> None:
    """Issue 16.10: a command broken inside ``--extra-index-url`` cannot be read (or copied
    by eye); lines break between words, and a word wider than the box scrolls."""
    server, _ = site
    context = browser.new_context(viewport={"width": width, "height": 800})
    try:
        page = context.new_page()
        page.goto(f"{server.url}/project/fresh-lib/")
        for block in ("install-pip", "install-uv"):
            lines = page.evaluate(
                "(id) => document.getElementById(id).getClientRects()[0].height", block
            )
            assert lines > 0
            assert page.evaluate(BROKEN_WORDS, block) == [], (block, width)
    finally:
        context.close()
