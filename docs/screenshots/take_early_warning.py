"""Re-take the early-warning screenshots (docs/early-warning.md) from the seed of
tests/web/test_early_warning_pages.py: a loopback index, Debian's headless Chromium.

.venv/bin/python docs/screenshots/take_early_warning.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.server import LiveServer
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.web.test_early_warning_pages import PHONE, WALL, seed

OUT = Path(__file__).parent
BADGES = """(srcs) => {
  const main = document.querySelector('main');
  main.replaceChildren();
  for (const src of srcs) {
    const p = document.createElement('p');
    const img = document.createElement('img');
    img.src = src; img.alt = src;
    p.append(img, ' ', src);
    main.append(p);
  }
}"""


def shoot(server: LiveServer) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        phone = browser.new_context(viewport=PHONE, is_mobile=True).new_page()
        phone.goto(server.url + "/compat/")
        top = phone.locator("form.filters").bounding_box()
        bottom = phone.locator(".matrix-wrap").bounding_box()
        assert top is not None and bottom is not None
        height = bottom["y"] + bottom["height"] - top["y"] + 8
        clip = {"x": 0, "y": top["y"] - 8, "width": PHONE["width"], "height": height}
        phone.screenshot(path=OUT / "compat-matrix-phone.png", full_page=True, clip=clip)
        wall = browser.new_context(viewport=WALL).new_page()
        wall.goto(server.url + "/compat/")
        wall.locator("main").screenshot(path=OUT / "compat-matrix-wall.png")
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        page.goto(server.url + "/project/numpy/")
        page.locator("section:has(#builds)").screenshot(path=OUT / "project-builds.png")
        page.goto(server.url + "/compat/")
        page.evaluate(
            BADGES,
            ["/badge/numpy/nightly.svg", "/badge/astropy/tests.svg", "/badge/xarray/tests.svg"],
        )
        page.wait_for_function("[...document.images].every((i) => i.complete)")
        page.set_viewport_size({"width": 520, "height": 400})
        page.locator("main").screenshot(path=OUT / "badges.png")
        browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with LiveServer(data=tmp / "data") as server:
            seed(server, tmp)
            shoot(server)


if __name__ == "__main__":
    main()
