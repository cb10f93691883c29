"""Signed-in pages in Chromium: sign in, tokens shown once, access requests, admin review,
audit log; plus the session and CSRF machinery driven by a plain HTTP client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.server import LiveServer
from tests.support.web import publish, upload
from tests.support.wheels import make_wheel
from tests.web.a11y import problems

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-12", "root": "root-password-1"}
PAYLOAD = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("signed-in")
    with LiveServer(data=tmp / "data") as server:
        orgs = {"alice": "NumPy", "bob": "SciPy", "root": "Index"}
        for name, password in PASSWORDS.items():
            admin = ["--admin"] if name == "root" else []
            server.cli(
                "user", "create", name, *admin, "--organisation", orgs[name],
                "--password-stdin", input=password + "\n",
            )  # fmt: skip
        token = server.token("alice", "demo")
        publish(server, token, tmp, "demo", "1.0.dev1")
        yield server


def sign_in(page: Page, server: LiveServer, user: str, path: str = "/account/") -> None:
    page.goto(server.url + path)
    if "/account/sign-in" in page.url:
        page.get_by_label("User name").fill(user)
        page.get_by_label("Password").fill(PASSWORDS[user])
        page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(server.url + path)))


@pytest.fixture
def other(browser: Browser) -> Iterator[BrowserContext]:
    """A second browser profile (another person)."""
    context = browser.new_context()
    try:
        yield context
    finally:
        context.close()


def test_user_signs_in_creates_a_token_and_sees_it_once(
    site: LiveServer, page: Page, tmp_path: Path
) -> None:
    page.goto(site.url + "/account/tokens")  # not signed in: to the sign-in page and back
    expect(page).to_have_url(re.compile(r"/account/sign-in\?next=%2Faccount%2Ftokens$"))
    assert problems(page) == []
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORDS["alice"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(site.url + "/account/tokens")
    assert problems(page) == []

    page.get_by_label("Name", exact=True).fill("github-actions")
    page.get_by_label("demo").check()
    page.get_by_label("Expires after").select_option("30")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Create token").click()
    assert posted.value.headers["cache-control"] == "no-store"
    secret = page.locator("#token-secret").inner_text().strip()
    assert re.fullmatch(r"nwt_[0-9a-f]{12}_[\w-]{43}", secret)
    expect(page.locator(".secret")).to_contain_text("shown only this once")
    prefix = secret.split("_")[1]
    row = page.locator("table.tokens tr", has_text=prefix)
    expect(row).to_contain_text("upload: demo")
    expect(row.locator(".badge")).to_have_text("active")

    # Shown once: the page read again never shows it, and neither does any other page.
    page.goto(site.url + "/account/tokens")
    expect(page.locator("#token-secret")).to_have_count(0)
    assert secret not in page.content()
    assert secret not in page.url

    page.goto(site.url + "/account/")
    assert secret not in page.content()
    page.goto(site.url + "/account/tokens")

    # The token works for uploads, until it is revoked from the page.
    upload(site, secret, make_wheel(tmp_path, "demo", "1.0.dev2"))
    page.get_by_role("button", name=f"Revoke token github-actions ({prefix})").click()
    expect(page.locator(".notice")).to_contain_text("revoked")
    expect(page.locator("table.tokens tr", has_text=prefix).locator(".badge")).to_have_text(
        "revoked"
    )
    refused = httpx.post(site.upload_url, auth=("__token__", secret), data={":action": "x"})
    assert refused.status_code == 401
    assert "revoked" in refused.text


def test_bad_token_form_shows_the_services_reason(site: LiveServer, page: Page) -> None:
    sign_in(page, site, "bob", "/account/tokens")
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Other projects").fill("demo")  # bob is not a member of demo
    page.get_by_role("button", name="Create token").click()
    expect(page.locator(".error")).to_contain_text("not a member of project 'demo'")
    expect(page.get_by_label("Other projects")).to_have_value("demo")  # input kept
    expect(page.locator("#token-secret")).to_have_count(0)


def test_admin_approves_a_request(site: LiveServer, page: Page, other: BrowserContext) -> None:
    sign_in(page, site, "bob", "/account/requests")
    page.get_by_label("Project", exact=True).fill("scipy-nightly")
    page.get_by_label("Reason").fill("I maintain SciPy's wheel builds.\n" + PAYLOAD)
    page.get_by_label("Repository URL").fill("https://github.com/scipy/scipy")
    page.get_by_role("button", name="File request").click()
    expect(page.locator(".notice")).to_contain_text("filed")
    expect(page.get_by_role("heading", level=1)).to_contain_text("pending")
    expect(page.locator(".reason")).to_contain_text(PAYLOAD)  # verbatim, as text
    request_url = page.url.split("?")[0]

    admin = other.new_page()
    sign_in(admin, site, "root", "/admin/requests")
    assert problems(admin) == []
    row = admin.locator("table.queue tr", has_text="scipy-nightly")
    expect(row).to_contain_text("bob")
    expect(row).to_contain_text("SciPy")
    row.get_by_role("link").click()
    expect(admin).to_have_url(request_url)
    admin.get_by_label("Add a comment").fill("Which CI builds the wheels? " + PAYLOAD)
    admin.get_by_role("button", name="Comment").click()
    expect(admin.locator(".comments")).to_contain_text("Which CI builds the wheels? " + PAYLOAD)
    assert "<script>window.__xss" not in admin.content()
    admin.get_by_label("Note").fill("Checked with the SciPy team.")
    admin.get_by_role("button", name="Approve").click()
    expect(admin.locator(".notice")).to_contain_text("approved")
    expect(admin.get_by_role("heading", level=1)).to_contain_text("approved")
    assert admin.evaluate("window.__xss") is None

    # The requester sees the decision; the project exists with bob as its admin.
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text("approved")
    expect(page.locator("dl.request")).to_contain_text("Checked with the SciPy team.")
    expect(page.get_by_role("button", name="Withdraw this request")).to_have_count(0)
    page.goto(site.url + "/account/")
    expect(page.locator("table")).to_contain_text("scipy-nightly")
    page.goto(site.url + "/project/scipy-nightly/")
    expect(page.locator(".members")).to_contain_text("bob")
    expect(page.locator(".members .badge")).to_have_text("admin")

    # The audit log records who approved, and filters by action.
    admin.goto(site.url + "/admin/audit?action=access.")
    log = admin.locator("table.audit tbody")
    expect(log.locator("tr").first).to_contain_text("access.approve")
    expect(log.locator("tr").first).to_contain_text("root")
    expect(log).to_contain_text("access.request")
    expect(log).not_to_contain_text("file.upload")
    assert problems(admin) == []


def test_review_rules_come_from_the_service(
    site: LiveServer, page: Page, other: BrowserContext
) -> None:
    # Same organisation: root files as a member of "Index", so make the requester alice and the
    # reviewer an admin of her organisation.
    site.cli("user", "create", "ada", "--admin", "--organisation", "NumPy",
             "--password-stdin", input="ada-password-12\n")  # fmt: skip
    PASSWORDS["ada"] = "ada-password-12"
    sign_in(page, site, "alice", "/account/requests")
    page.get_by_label("Project", exact=True).fill("numpy-extra")
    page.get_by_label("Reason").fill("More NumPy wheels.")
    page.get_by_role("button", name="File request").click()
    expect(page.locator(".notice")).to_contain_text("filed")
    request_url = page.url.split("?")[0]

    reviewer = other.new_page()
    sign_in(reviewer, site, "ada", "/admin/requests")
    reviewer.goto(request_url)
    reviewer.get_by_role("button", name="Approve").click()
    expect(reviewer.locator(".error")).to_contain_text("'NumPy'")
    expect(reviewer.get_by_role("heading", level=1)).to_contain_text("pending")
    # Denying needs a reason (the browser insists; the service too, for other clients).
    reviewer.get_by_label("Reason for the requester").fill("   ")
    reviewer.get_by_role("button", name="Deny").click()
    expect(reviewer.locator(".error")).to_contain_text("reason")

    # A non-admin cannot open the queue; the requester withdraws instead.
    page.goto(site.url + "/admin/requests")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    page.goto(request_url)
    page.get_by_role("button", name="Withdraw this request").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("withdrawn")


def _session(server: LiveServer, user: str) -> httpx.Client:
    """Sign in with a plain HTTP client, the way a browser does (GET the form, then POST)."""
    client = httpx.Client(base_url=server.url, timeout=30)
    form = client.get("/account/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/account/sign-in",
        data={"csrf": csrf, "user": user, "password": PASSWORDS[user], "next": "/account/"},
    )
    assert response.status_code == 303, response.text
    return client


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def test_forms_need_the_sessions_csrf_token(site: LiveServer) -> None:
    with closing(_session(site, "alice")) as client:
        good = _csrf(client, "/account/tokens")
        data = {"name": "csrf-test", "permission": "manage", "days": "30"}
        for bad in ({}, {"csrf": ""}, {"csrf": good[:-1] + "x"}):
            response = client.post("/account/tokens", data={**data, **bad})
            assert response.status_code == 403
            assert "security token" in response.text
        evil = client.post(
            "/account/tokens",
            data={**data, "csrf": good},
            headers={"Origin": "https://evil.example"},
        )
        assert evil.status_code == 403
        assert "another site" in evil.text
        assert "csrf-test" not in client.get("/account/tokens").text  # nothing was created
        # JSON and multipart bodies are refused: forms only.
        assert client.post("/account/tokens", json={**data, "csrf": good}).status_code == 400
        ok = client.post("/account/tokens", data={**data, "csrf": good})
        assert ok.status_code == 200 and "nwt_" in ok.text
        # Another session's token does not work here.
        with closing(_session(site, "bob")) as other:
            theirs = _csrf(other, "/account/tokens")
        assert theirs != good
        assert client.post("/account/tokens", data={**data, "csrf": theirs}).status_code == 403


def test_sign_in_needs_its_csrf_cookie_and_refuses_wrong_passwords(site: LiveServer) -> None:
    with httpx.Client(base_url=site.url) as client:
        creds = {"user": "alice", "password": PASSWORDS["alice"]}
        assert client.post("/account/sign-in", data=creds).status_code == 403  # no token
        csrf = _csrf(client, "/account/sign-in")
        wrong = client.post("/account/sign-in", data={**creds, "password": "nope", "csrf": csrf})
        assert wrong.status_code == 401
        assert "wrong user name or password" in wrong.text
        assert "nw_session" not in wrong.headers.get("set-cookie", "")
        unknown = client.post("/account/sign-in", data={**creds, "user": "zed", "csrf": csrf})
        assert unknown.status_code == 401 and "wrong user name or password" in unknown.text


def test_session_cookie_and_sign_out(site: LiveServer) -> None:
    client = _session(site, "alice")
    cookie = client.cookies.get("nw_session")
    assert cookie
    with httpx.Client(base_url=site.url) as raw:
        form = raw.get("/account/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        signed = raw.post(
            "/account/sign-in",
            data={"csrf": csrf, "user": "alice", "password": PASSWORDS["alice"]},
        )
    header = signed.headers.get_list("set-cookie")
    session_cookie = next(h for h in header if h.startswith("nw_session="))
    attrs = {a.strip().lower() for a in session_cookie.split(";")[1:]}
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain http here; see the https test below
    assert client.get("/account/").status_code == 200
    csrf = _csrf(client, "/account/")
    out = client.post("/account/sign-out", data={"csrf": csrf})
    assert out.status_code == 303
    # The old cookie is dead on the server, not just deleted in this browser.
    with httpx.Client(base_url=site.url, cookies={"nw_session": cookie}) as replay:
        assert replay.get("/account/").status_code == 303
        assert (
            replay.get("/account/tokens")
            .headers["location"]
            .endswith("account/sign-in?next=%2Faccount%2Ftokens")
        )
    client.close()


def test_next_must_stay_on_this_site(site: LiveServer) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        with httpx.Client(base_url=site.url) as client:
            csrf = _csrf(client, "/account/sign-in")
            response = client.post(
                "/account/sign-in",
                data={"csrf": csrf, "user": "bob", "password": PASSWORDS["bob"], "next": target},
            )
            assert response.status_code == 303
            assert response.headers["location"] == "../account/"


@pytest.fixture(scope="module")
def https_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("https")
    server = LiveServer(
        data=tmp / "data",
        env={
            "NIGHTWHEELS_BASE_URL": "https://index.example",
            "NIGHTWHEELS_AUTH_FAILURES_PER_MINUTE": "3",
        },
    )
    server.data.mkdir()
    server.start()
    server.cli("user", "create", "alice", "--password-stdin", input=PASSWORDS["alice"] + "\n")
    try:
        yield server
    finally:
        server.stop()


def test_cookies_are_secure_behind_https_and_failures_are_throttled(
    https_site: LiveServer,
) -> None:
    with httpx.Client(base_url=https_site.url) as client:
        form = client.get("/account/sign-in")
        set_cookie = form.headers["set-cookie"]
        assert set_cookie.startswith("__Host-nw_csrf=") and "Secure" in set_cookie
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        cookie = {"Cookie": f"__Host-nw_csrf={csrf}", "Origin": "https://index.example"}
        signed = client.post(
            "/account/sign-in",
            data={"csrf": csrf, "user": "alice", "password": PASSWORDS["alice"]},
            headers=cookie,
        )
        assert signed.status_code == 303
        session = next(
            h for h in signed.headers.get_list("set-cookie") if h.startswith("__Host-nw_session=")
        )
        assert "Secure" in session and "HttpOnly" in session and "SameSite=lax" in session
        statuses = [
            client.post(
                "/account/sign-in",
                data={"csrf": csrf, "user": "alice", "password": f"wrong-{i}"},
                headers=cookie,
            ).status_code
            for i in range(4)
        ]
        assert statuses == [401, 401, 401, 429]


def test_change_password_signs_out_the_other_sessions(site: LiveServer, page: Page) -> None:
    old, new = "carol-password-1", "carol-password-2"
    site.cli("user", "create", "carol", "--password-stdin", input=old + "\n")

    def sign_in_with(password: str) -> httpx.Client:
        client = httpx.Client(base_url=site.url, timeout=30)
        csrf = _csrf(client, "/account/sign-in")
        answer = client.post(
            "/account/sign-in", data={"csrf": csrf, "user": "carol", "password": password}
        )
        assert answer.status_code in (303, 401), answer.text
        return client

    elsewhere = sign_in_with(old)
    assert elsewhere.get("/account/").status_code == 200

    page.goto(site.url + "/account/sign-in")
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password").fill(old)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Change your password").click()
    expect(page).to_have_url(site.url + "/account/password")
    assert problems(page) == []

    def submit(current: str, first: str, second: str) -> None:
        page.get_by_label("Current password").fill(current)
        page.get_by_label("New password", exact=True).fill(first)
        page.get_by_label("New password again").fill(second)
        page.get_by_role("button", name="Change password").click()

    for current, first, second, reason in (
        ("not-the-password", new, new, "current password is not right"),
        (old, new, new + "x", "two new passwords differ"),
        (old, old, old, "same as the current one"),
    ):
        submit(current, first, second)
        expect(page.locator(".error, [role=alert]").first).to_contain_text(reason)
        # Nothing changed: the other session and the old password still work.
        assert elsewhere.get("/account/").status_code == 200
    submit(old, new, new)
    expect(page).to_have_url(re.compile(r"/account/\?notice=password$"))
    expect(page.get_by_role("status")).to_contain_text("other sessions were signed out")

    assert elsewhere.get("/account/").status_code == 303  # its session is gone
    assert page.goto(site.url + "/account/tokens").status == 200  # this one is kept
    with closing(sign_in_with(old)) as refused:
        assert refused.get("/account/").status_code == 303
    with closing(sign_in_with(new)) as accepted:
        assert accepted.get("/account/").status_code == 200
    elsewhere.close()
