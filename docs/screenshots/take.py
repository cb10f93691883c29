"""Re-take the screenshots in this folder: a demo index on loopback, Debian's headless Chromium.

.venv/bin/python docs/screenshots/take.py
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.server import LiveServer
from tests.support.web import backdate, publish
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

OUT = Path(__file__).parent
USERS = {  # name: (organisation, admin, password)
    "ralf": ("NumPy", False, "ralf-password-1"),
    "tyler": ("SciPy", False, "tyler-password-1"),
    "olivia": ("Index admins", True, "olivia-password-1"),
}
TAGS = [
    f"cp{py}-cp{py}-{plat}"
    for py in ("313", "312")
    for plat in (
        "manylinux_2_17_x86_64.manylinux2014_x86_64",
        "manylinux_2_17_aarch64.manylinux2014_aarch64",
        "macosx_11_0_arm64",
        "win_amd64",
    )
] + ["cp313-cp313t-manylinux_2_17_x86_64.manylinux2014_x86_64"]


def seed(server: LiveServer, tmp: Path) -> None:
    for name, (org, admin, password) in USERS.items():
        flags = ["--admin"] if admin else []
        server.cli(
            "user", "create", name, *flags, "--organisation", org, "--password-stdin",
            input=password + "\n",
        )  # fmt: skip
    numpy = server.token("ralf", "numpy", "scikit-image")
    scipy = server.token("tyler", "scipy", "pandas", "networkx", "numpy")
    for day, version in ((3, "2.4.0.dev0+git20261123"), (0, "2.4.0.dev0+git20261126")):
        publish(server, numpy, tmp, "numpy", version, *TAGS)
        if day:
            backdate(server, "numpy", day, version)
    publish(server, scipy, tmp, "scipy", "1.17.0.dev0+git20261126", *TAGS[:5])
    publish(server, scipy, tmp, "pandas", "3.1.0.dev0+1234", *TAGS[:3])
    backdate(server, "pandas", 17)
    publish(server, numpy, tmp, "scikit-image", "0.26.0.dev0", "py3-none-any")
    backdate(server, "scikit-image", 26)
    publish(server, scipy, tmp, "networkx", "3.6rc0.dev0", "py3-none-any")
    backdate(server, "networkx", 41)
    server.cli("yank", "numpy", "2.4.0.dev0+git20261123", "--reason", "segfault on import")
    report = server.cli(
        "token", "create", "--user", "tyler", "--permission", "report", "--name", "report"
    ).stdout.strip()
    wheel = next((tmp / "dist").glob("numpy-2.4.0.dev0+git20261126-cp313-cp313-manylinux*x86_64*"))
    for downstream, outcome in (("scipy", "passed"), ("astropy", "failed"), ("xarray", "passed")):
        response = httpx.post(
            f"{server.url}/api/v1/compat/results",
            headers={"Authorization": f"Bearer {report}"},
            json={
                "downstream": downstream,
                "outcome": outcome,
                "python": "3.13.1",
                "platform": "linux-x86_64",
                "tested_at": datetime.now(UTC).isoformat(),
                "repository": f"https://github.com/{downstream}/{downstream}",
                "culprits": ["numpy"] if outcome == "failed" else [],
                "nightlies": [
                    {
                        "project": "numpy",
                        "version": "2.4.0.dev0+git20261126",
                        "filename": wheel.name,
                        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
                    }
                ],
            },
        )
        response.raise_for_status()


def sign_in(page: Page, server: LiveServer, user: str, path: str) -> None:
    page.goto(f"{server.url}/account/sign-in?next={path}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(USERS[user][2])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}{path}*")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with LiveServer(data=tmp / "data") as server:
            seed(server, tmp)
            shoot(server)


def shoot(server: LiveServer) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        desktop = browser.new_context(viewport={"width": 1200, "height": 900})
        page = desktop.new_page()
        for path, name in (
            ("/", "home"),
            ("/project/numpy/", "project"),
            ("/freshness/", "freshness"),
        ):
            page.goto(server.url + path)
            page.screenshot(path=OUT / f"{name}.png", full_page=True)
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        mobile = phone.new_page()
        mobile.goto(server.url + "/project/numpy/")
        mobile.screenshot(path=OUT / "project-phone.png", full_page=True)

        sign_in(page, server, "tyler", "/account/requests")
        page.get_by_label("Project", exact=True).fill("scipy-openblas")
        page.get_by_label("Reason").fill(
            "I maintain the OpenBLAS wheels that SciPy builds against; "
            "our nightly job runs in the scipy/scipy-openblas repository."
        )
        page.get_by_label("Repository URL").fill("https://github.com/scipy/scipy-openblas")
        page.get_by_role("button", name="File request").click()
        page.screenshot(path=OUT / "request.png", full_page=True)
        page.goto(server.url + "/account/tokens")
        page.get_by_label("Name", exact=True).fill("github-actions")
        page.get_by_label("scipy").check()
        page.get_by_role("button", name="Create token").click()
        page.screenshot(path=OUT / "tokens.png", full_page=True)
        page.goto(server.url + "/account/")
        page.screenshot(path=OUT / "account.png", full_page=True)

        admin = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        sign_in(admin, server, "olivia", "/admin/requests")
        admin.screenshot(path=OUT / "admin-queue.png", full_page=True)
        admin.goto(server.url + "/admin/audit")
        admin.set_viewport_size({"width": 1200, "height": 1400})
        admin.screenshot(path=OUT / "audit.png")
        browser.close()


if __name__ == "__main__":
    main()
