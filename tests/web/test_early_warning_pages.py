"""The early warning in a real headless Chromium: the compatibility matrix at a desktop, a
phone and a wall-screen width, its filters, the project page's builds and the badges.

Results are posted through the API, as ``nightwheels report --server`` does
(tests/test_early_warning.py runs the real client); what is under test here is the browser.
``docs/screenshots/take_early_warning.py`` re-takes the screenshots from the same seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.server import LiveServer
from tests.support.web import publish
from tests.web.a11y import overflows_horizontally, problems

PHONE = {"width": 390, "height": 844}
WALL = {"width": 2560, "height": 1440}
UPSTREAMS = {"numpy": "2.4.0.dev0+git20261126", "scipy": "1.17.0.dev0+git20261126",
             "pandas": "3.1.0.dev0+1234"}  # fmt: skip
DOWNSTREAMS = ("astropy", "matplotlib", "networkx", "scikit-image", "statsmodels", "xarray")
LINUX = "linux-x86_64"
# (downstream, outcome, python, platform, days ago, upstreams installed, culprits)
RUNS: list[tuple[str, str, str, str, float, tuple[str, ...], tuple[str, ...]]] = [
    ("astropy", "failed", "3.13.1", LINUX, 0.2, ("numpy", "scipy"), ("numpy",)),
    ("xarray", "passed", "3.13.1", LINUX, 0.1, ("numpy", "pandas"), ()),
    ("scikit-image", "failed", "3.12.8", "macosx-arm64", 1, ("numpy", "scipy"), ("scipy",)),
    ("networkx", "install-error", "3.12.8", "win-amd64", 2, ("scipy",), ()),
    ("matplotlib", "passed", "3.13.1", LINUX, 10, ("numpy",), ()),
    ("scipy", "passed", "3.13.1", LINUX, 0.3, ("numpy",), ()),
    ("statsmodels", "failed", "3.13.1", LINUX, 0.5, ("numpy", "scipy", "pandas"), ("pandas",)),
]
EXPECTED = {
    ("numpy", "astropy"): "culprit",
    ("scipy", "astropy"): "failed-other",
    ("numpy", "xarray"): "passed",
    ("pandas", "xarray"): "passed",
    ("numpy", "scikit-image"): "failed-other",
    ("scipy", "scikit-image"): "culprit",
    ("scipy", "networkx"): "could-not-run",
    ("numpy", "matplotlib"): "stale",
    ("numpy", "scipy"): "passed",
    ("pandas", "statsmodels"): "culprit",
    ("numpy", "statsmodels"): "failed-other",
    ("scipy", "statsmodels"): "failed-other",
}
FIX = "https://github.com/numpy/numpy/pull/30001"


def _post(server: LiveServer, token: str, body: dict[str, Any]) -> None:
    answer = httpx.post(
        f"{server.url}/api/v1/compat/results",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text


def seed(server: LiveServer, tmp: Path) -> None:
    """Three upstreams with nightlies, seven downstreams reporting, a known-bad numpy build."""
    server.create_user("ralf")
    upload = server.token("ralf", *UPSTREAMS, *DOWNSTREAMS)
    wheels: dict[str, Path] = {}
    for name, version in UPSTREAMS.items():
        wheels[name] = publish(server, upload, tmp, name, version)[0]
    for name in DOWNSTREAMS:
        publish(server, upload, tmp, name, "0.1.dev0")
    server.cli("admin", "member", "set", "numpy", "ralf", "--role", "admin")
    server.cli("retention", "set", "astropy", "--repository", "https://github.com/astropy/astropy")
    report = server.cli(
        "token", "create", "--user", "ralf", "--permission", "report", "--name", "ci"
    ).stdout.strip()

    def row(name: str) -> dict[str, str]:
        return {
            "project": name,
            "version": UPSTREAMS[name],
            "filename": wheels[name].name,
            "sha256": hashlib.sha256(wheels[name].read_bytes()).hexdigest(),
        }

    now = datetime.now(UTC)
    for downstream, outcome, python, platform, days, ups, culprits in RUNS:
        _post(server, report, {
            "downstream": downstream, "outcome": outcome, "python": python,
            "platform": platform, "tested_at": (now - timedelta(days=days)).isoformat(),
            "repository": f"https://github.com/{downstream}/{downstream}",
            "run_url": f"https://github.com/{downstream}/{downstream}/actions/runs/42",
            "nightlies": [row(u) for u in ups], "culprits": list(culprits),
            "first_bad": [row(c) for c in culprits],
            "failures": ["tests/test_core.py::test_sum"] if outcome == "failed" else [],
        })  # fmt: skip
    manage = server.cli(
        "token", "create", "--user", "ralf", "--permission", "manage", "--project", "numpy",
    ).stdout.strip()  # fmt: skip
    marked = httpx.post(
        f"{server.url}/api/v1/projects/numpy/known-bad",
        json={"version": UPSTREAMS["numpy"], "reason": "sum() overflows on int8", "link": FIX},
        headers={"Authorization": f"Bearer {manage}"},
    )
    assert marked.status_code == 201, marked.text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("early-web")
    with LiveServer(data=tmp / "data") as server:
        seed(server, tmp)
        yield server


def verdicts(page: Page) -> dict[tuple[str, str], str]:
    found = page.locator("td.cell[data-verdict]").evaluate_all(
        "els => els.map(e => [e.dataset.upstream, e.dataset.downstream, e.dataset.verdict])"
    )
    return {(u, d): v for u, d, v in found}


def test_matrix_cells_and_known_bad(site: LiveServer, page: Page) -> None:
    page.goto(site.url + "/compat/")
    assert verdicts(page) == EXPECTED
    rows = page.locator("table.matrix tbody th[scope=row]").all_inner_texts()
    assert rows == ["numpy", "pandas", "scipy"]
    culprit = page.locator("td[data-upstream=numpy][data-downstream=astropy]")
    expect(culprit).to_contain_text("failed: culprit")
    expect(culprit).to_contain_text("first bad: numpy-")
    expect(culprit.get_by_role("link", name="fix")).to_have_attribute("href", FIX)
    expect(culprit.locator(".known-bad")).to_contain_text("known upstream regression")
    # Links to the run only inside the downstream's own repository (astropy set one).
    expect(culprit.get_by_role("link", name="run")).to_have_attribute(
        "href", "https://github.com/astropy/astropy/actions/runs/42"
    )
    expect(page.locator("td[data-downstream=xarray] a.run")).to_have_count(0)
    expect(page.locator("td[data-downstream=matplotlib] .age")).to_contain_text("10 days ago")
    # Every verdict looks different from every other (colour, not only the symbol).
    colours = {
        v: page.locator(f"td.cell[data-verdict='{v}']").first.evaluate(
            "el => getComputedStyle(el).backgroundColor"
        )
        for v in set(EXPECTED.values())
    }
    assert len(set(colours.values())) == len(colours), colours
    assert problems(page) == []


def test_matrix_filters(site: LiveServer, page: Page) -> None:
    page.goto(site.url + "/compat/")
    page.get_by_label("Python").select_option("3.12.8")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/compat/?python=3.12.8*")
    assert verdicts(page) == {
        k: v for k, v in EXPECTED.items() if k[1] in ("scikit-image", "networkx")
    }
    expect(page.get_by_label("Python")).to_have_value("3.12.8")  # the choice stays shown
    page.get_by_label("Platform").select_option("win-amd64")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**platform=win-amd64*")
    assert verdicts(page) == {("scipy", "networkx"): "could-not-run"}
    page.get_by_label("Python").select_option("")
    page.get_by_label("Platform").select_option(LINUX)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**platform=linux-x86_64*")
    assert set(verdicts(page)) == {k for k in EXPECTED if k[1] not in ("scikit-image", "networkx")}
    page.goto(site.url + "/compat/?platform=riscv")
    expect(page.locator("main")).to_contain_text(
        "No downstream project has reported a result for this filter"
    )


def _sticky_and_legible(page: Page) -> dict[str, float]:
    return page.evaluate(
        """() => {
          const wrap = document.querySelector('.matrix-wrap');
          const head = document.querySelector('table.matrix tbody th[scope=row]');
          const cell = document.querySelector('td.cell[data-verdict]');
          const symbol = cell.querySelector('.symbol');
          const before = head.getBoundingClientRect().left;
          wrap.scrollLeft = wrap.scrollWidth;
          const after = head.getBoundingClientRect().left;
          const pinned = after - wrap.getBoundingClientRect().left;
          const covered = document.elementFromPoint(after + 4, head.getBoundingClientRect().top + 4);
          const r = cell.getBoundingClientRect();
          const out = {
            scrolls: wrap.scrollWidth - wrap.clientWidth, pinned, moved: Math.abs(after - before),
            headOnTop: head.contains(covered) ? 1 : 0, wrapWidth: wrap.clientWidth,
            headWidth: head.getBoundingClientRect().width, cellWidth: r.width, cellHeight: r.height,
            symbolPx: parseFloat(getComputedStyle(symbol).fontSize),
            agePx: parseFloat(getComputedStyle(cell.querySelector('.age')).fontSize),
          };
          wrap.scrollLeft = 0;
          return out;
        }"""
    )


def test_matrix_on_a_phone(site: LiveServer, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = context.new_page()
        page.goto(site.url + "/compat/")
        assert not overflows_horizontally(page)  # only the matrix scrolls sideways
        m = _sticky_and_legible(page)
        assert m["scrolls"] > 0  # seven downstreams do not fit in 390 px: the matrix scrolls
        # The upstream column stays put (at the wrap's left edge, within the border spacing).
        assert 0 <= m["pinned"] <= 4 and m["headOnTop"] == 1, m
        assert m["symbolPx"] >= 16 and m["agePx"] >= 12, m
        assert m["cellWidth"] >= 44 and m["cellHeight"] >= 44, m  # a tap target
        assert m["headWidth"] <= PHONE["width"] / 3, m  # room left for the cells
        # The verdict is still there for a screen reader when its words are hidden.
        cell = page.locator("td[data-upstream=numpy][data-downstream=astropy]")
        what = cell.locator(".what")
        assert what.text_content() == "failed: culprit"
        box = what.bounding_box()
        assert box is not None and box["width"] <= 1, box  # for screen readers only
        assert "failed: culprit" in (cell.get_attribute("title") or "")
        assert problems(page) == []
    finally:
        context.close()


def test_matrix_on_a_wall_screen(site: LiveServer, browser: Browser) -> None:
    context = browser.new_context(viewport=WALL)
    try:
        page = context.new_page()
        page.goto(site.url + "/compat/")
        assert not overflows_horizontally(page)
        m = _sticky_and_legible(page)
        assert m["scrolls"] == 0, m  # the whole matrix at once
        assert m["symbolPx"] >= 28 and m["agePx"] >= 16, m
        # The matrix uses the screen: more than half its width, not a column in the middle.
        assert m["wrapWidth"] > WALL["width"] / 2, m
        assert problems(page) == []
    finally:
        context.close()


def test_project_page_builds(site: LiveServer, page: Page) -> None:
    page.goto(site.url + "/project/numpy/")
    build = page.locator("#builds ~ ul.builds li.build").first
    expect(build).to_contain_text("6 downstreams tested, 2 passed, 3 failed, culprit numpy in 1")
    expect(build).to_contain_text("first bad build")
    expect(build).to_contain_text("sum() overflows on int8")
    expect(build.get_by_role("link", name="fix")).to_have_attribute("href", FIX)
    assert problems(page) == []


def test_badges_render(site: LiveServer, page: Page) -> None:
    page.goto(site.url + "/compat/")
    sizes = page.evaluate(
        """async (srcs) => Promise.all(srcs.map((src) => new Promise((resolve) => {
              const img = new Image();
              img.onload = () => resolve([src, img.naturalWidth, img.naturalHeight]);
              img.onerror = () => resolve([src, 0, 0]);
              img.src = src;
              document.querySelector('main').append(img);
           })))""",
        ["/badge/numpy/nightly.svg", "/badge/astropy/tests.svg", "/badge/xarray/tests.svg"],
    )
    for src, width, height in sizes:
        assert width > 40 and height == 20, (src, width, height)
    page.goto(site.url + "/badge/astropy/tests.svg")
    expect(page.locator("svg")).to_have_attribute("aria-label", "tests vs nightlies: failing")
    box = page.locator("svg").bounding_box()
    assert box is not None and box["width"] > 40 and box["height"] == 20


def test_project_builds_on_a_phone(site: LiveServer, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = context.new_page()
        page.goto(site.url + "/project/numpy/")
        expect(page.locator("#builds")).to_be_visible()
        assert not overflows_horizontally(page)
        assert problems(page) == []
    finally:
        context.close()
