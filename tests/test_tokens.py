"""Personal tokens through the live API: scope, shown once, revoke, rotate, expiry, throttle."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from nightwheels.db.models import utcnow
from nightwheels.services import tokens as token_service
from tests.support import clients
from tests.support.access import Accounts, Api, forbidden, live, people, refused, upload
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel

__all__ = ["live", "people"]


def test_create_list_shown_once_and_stored_as_hash(live: LiveServer, people: Accounts) -> None:
    people.user("tara", organisation="T")
    people.role("tara-proj", "tara")
    tara = Api(live, people.token("tara"))
    created = tara.ok(
        "POST", "/tokens", {"projects": ["Tara_Proj"], "name": "ci", "expires_in_days": 90}
    )
    secret = created["token"]
    assert secret.startswith("nwt_") and created["projects"] == ["tara-proj"]
    assert created["permissions"] == ["upload"]

    listed = {t["prefix"]: t for t in tara.ok("GET", "/tokens")}
    entry = listed[created["prefix"]]
    assert secret not in str(listed)  # never shown again
    assert entry["name"] == "ci" and entry["status"] == "active" and entry["warning"] is None
    assert entry["projects"] == ["tara-proj"] and entry["last_used_at"] is None
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=89, hours=23) < expires - utcnow() <= timedelta(days=90)
    # The database holds only a SHA-256 of the token, nowhere the token itself.
    if live.backend.name == "sqlite":
        raw = b"".join(p.read_bytes() for p in live.data.glob("nightwheels.db*"))
        assert secret.encode() not in raw
    digest = people.sql("SELECT digest FROM tokens WHERE prefix = :p", p=created["prefix"])
    assert digest == hashlib.sha256(secret.encode()).hexdigest()

    # It uploads; last use is recorded.
    assert upload(
        live, secret, make_wheel(Path(live.data.parent) / "w", "tara-proj", "1.0")
    ).is_success
    entry = {t["prefix"]: t for t in tara.ok("GET", "/tokens")}[created["prefix"]]
    assert entry["last_used_at"] is not None


def test_token_scope_rules(live: LiveServer, people: Accounts) -> None:
    people.user("uma")
    people.role("uma-a", "uma")
    people.role("uma-b", "uma")
    people.user("vic")
    uma = Api(live, people.token("uma"))
    # Upload tokens name projects the owner belongs to; never unscoped; never both kinds.
    refused(uma.post("/tokens", {"projects": []}), 400, "at least one project")
    refused(uma.post("/tokens", {"projects": ["nowhere-project"]}), 404, "request access")
    people.role("vic-proj", "vic")
    forbidden(
        uma.post("/tokens", {"projects": ["vic-proj"]}),
        "'uma' is not a member of project 'vic-proj'",
    )
    refused(uma.post("/tokens", {"projects": ["uma-a"], "permission": "admin"}), 422, "permission")
    refused(
        uma.post("/tokens", {"projects": ["uma-a"], "expires_in_days": -1}), 422, "expires_in_days"
    )
    # An upload token cannot manage: not tokens, not members, not requests.
    up = Api(live, people.token("uma", "uma-a", permission="upload"))
    forbidden(up.get("/tokens"), "is an upload token")
    forbidden(up.post("/tokens", {"projects": ["uma-a"]}), "is an upload token")
    forbidden(up.put("/projects/uma-a/members/vic"), "is an upload token")
    forbidden(up.post("/access-requests", {"project": "x-y", "reason": "r"}), "is an upload token")
    assert up.ok("GET", "/me")["token"]["permissions"] == ["upload"]
    # A manage token scoped to uma-a creates tokens for uma-a only.
    scoped = Api(live, people.token("uma", "uma-a", name="scoped"))
    scoped.ok("POST", "/tokens", {"projects": ["uma-a"]})
    forbidden(scoped.post("/tokens", {"projects": ["uma-b"]}), "cannot create a token that reaches")
    forbidden(
        scoped.post("/tokens", {"permission": "manage"}), "cannot create a token that reaches"
    )
    # A manage token cannot upload.
    forbidden(
        upload(
            live, people.token("uma", name="m3"), make_wheel(live.data.parent / "u", "uma-a", "1")
        ),
        "has no upload permission",
    )
    # Wrong project for an upload token.
    forbidden(
        upload(
            live,
            people.token("uma", "uma-a", permission="upload", name="a-only"),
            make_wheel(live.data.parent / "u2", "uma-b", "1"),
        ),
        "may not upload to 'uma-b'",
    )


def test_revoked_and_expired_tokens_say_which(
    live: LiveServer, people: Accounts, tmp_path: Path
) -> None:
    people.user("wes")
    people.role("wes-proj", "wes")
    wes = Api(live, people.token("wes"))
    created = wes.ok("POST", "/tokens", {"projects": ["wes-proj"], "name": "nightly"})
    wes.ok("DELETE", f"/tokens/{created['prefix']}")
    wheel = make_wheel(tmp_path, "wes-proj", "1.0")
    refused(upload(live, created["token"], wheel), 401, "token 'nightly' was revoked on")
    # uv publish shows the reason to the user.
    out = clients.uv_publish(
        live.upload_url, created["token"], wheel, cache=tmp_path / "uv", check=False
    )
    assert out.returncode != 0 and "was revoked" in out.stdout + out.stderr, out.stderr

    expiring = people.token("wes", "wes-proj", permission="upload", name="old")
    people.set_token_expiry(expiring, utcnow() - timedelta(minutes=1))
    refused(upload(live, expiring, wheel), 401, "token 'old' expired on")
    refused(Api(live, "nwt_000000000000_nope").get("/me"), 401, "invalid token")
    refused(Api(live, "garbage").get("/me"), 401, "not a nightwheels token")
    # A revoked token is refused everywhere, instantly.
    manage = people.token("wes", name="m")
    Api(live, manage).ok("DELETE", f"/tokens/{manage.split('_')[1]}")
    refused(Api(live, manage).get("/tokens"), 401, "was revoked")


def test_expiry_warnings_in_uploads_lists_and_me(
    live: LiveServer, people: Accounts, tmp_path: Path
) -> None:
    people.user("xia", organisation="X")
    people.role("xia-proj", "xia")
    xia = Api(live, people.token("xia"))
    soon = xia.ok(
        "POST", "/tokens", {"projects": ["xia-proj"], "name": "soon", "expires_in_days": 3}
    )
    later = xia.ok(
        "POST", "/tokens", {"projects": ["xia-proj"], "name": "later", "expires_in_days": 60}
    )
    result = upload(live, soon["token"], make_wheel(tmp_path, "xia-proj", "1.0"))
    assert result.status_code == 200
    [warning] = result.json()["warnings"]
    assert "token 'soon' expires in 3 days" in warning and "rotate" in warning
    listed = {t["name"]: t for t in xia.ok("GET", "/tokens")}
    assert "expires in 3 days" in listed["soon"]["warning"]
    assert listed["later"]["warning"] is None
    assert "expires in 3 days" in Api(live, soon["token"]).ok("GET", "/me")["token"]["warning"]
    assert (
        upload(live, later["token"], make_wheel(tmp_path / "l", "xia-proj", "1.1")).json()[
            "warnings"
        ]
        == []
    )
    # The plain-text answer (what twine gets) carries it too.
    plain = httpx.post(
        live.upload_url,
        auth=("__token__", soon["token"]),
        data={":action": "file_upload", "name": "xia-proj", "version": "1.0"},
    )
    assert plain.status_code == 400  # no file: refused, but only after authentication

    # The notifier's query: active personal tokens expiring within the window.
    with people.services.db.read() as session:
        expiring = token_service.expiring_tokens(session, timedelta(days=14))
    mine = [e for e in expiring if e.user == "xia"]
    assert [e.name for e in mine] == ["soon"]
    assert "expires in 3 days" in mine[0].message and mine[0].projects == ["xia-proj"]


def test_rotate_by_owner_and_by_project_admin(
    live: LiveServer, people: Accounts, tmp_path: Path
) -> None:
    people.user("yan")  # project admin
    people.user("zed")  # uploader who owns the CI token
    people.user("abe")  # unrelated
    people.role("yan-proj", "yan", "admin")
    people.role("yan-proj", "zed", "uploader")
    people.role("yan-other", "zed", "admin")
    yan, zed, abe = (Api(live, people.token(n)) for n in ("yan", "zed", "abe"))
    ci = zed.ok("POST", "/tokens", {"projects": ["yan-proj"], "name": "ci", "expires_in_days": 30})
    both = zed.ok("POST", "/tokens", {"projects": ["yan-proj", "yan-other"], "name": "both"})

    # The owner rotates: same name, scope, lifetime; the old one stops at once.
    new = zed.ok("POST", f"/tokens/{ci['prefix']}/rotate")
    assert new["name"] == "ci" and new["projects"] == ["yan-proj"] and new["owner"] == "zed"
    assert new["prefix"] != ci["prefix"]
    refused(upload(live, ci["token"], make_wheel(tmp_path / "1", "yan-proj", "1")), 401, "revoked")
    assert upload(live, new["token"], make_wheel(tmp_path / "2", "yan-proj", "2")).is_success

    # A project admin rotates the uploader's token without a site admin; it becomes theirs.
    forbidden(abe.post(f"/tokens/{new['prefix']}/rotate"), "only its owner or an admin")
    by_admin = yan.ok("POST", f"/tokens/{new['prefix']}/rotate")
    assert by_admin["owner"] == "yan" and by_admin["projects"] == ["yan-proj"]
    assert upload(live, by_admin["token"], make_wheel(tmp_path / "3", "yan-proj", "3")).is_success
    refused(upload(live, new["token"], make_wheel(tmp_path / "4", "yan-proj", "4")), 401, "revoked")
    # ... but not one that reaches a project they do not admin.
    forbidden(yan.post(f"/tokens/{both['prefix']}/rotate"), "every project")
    # Revoking needs only one of the token's projects (a leak is everyone's emergency).
    forbidden(abe.delete(f"/tokens/{both['prefix']}"), "only its owner or an admin")
    assert yan.ok("DELETE", f"/tokens/{both['prefix']}")["status"] == "revoked"
    refused(zed.post(f"/tokens/{both['prefix']}/rotate"), 409, "revoked")
    refused(zed.post("/tokens/0123456789ab/rotate"), 404, "no token with prefix")
    refused(zed.post("/tokens/NOT-A-PREFIX/rotate"), 422, "prefix")

    # Project admins see the tokens that reach their project; others may not.
    names = {t["name"] for t in yan.ok("GET", "/projects/yan-proj/tokens")}
    assert names == {"ci"}
    forbidden(zed.get("/projects/yan-proj/tokens"), "only admins of project 'yan-proj'")


def test_login_with_password_gives_a_manage_token(live: LiveServer, people: Accounts) -> None:
    people.user("bea", password="correct horse battery")
    people.user("cal")  # no password: cannot log in
    anon = Api(live)
    refused(
        anon.post("/login", {"user": "bea", "password": "wrong password!"}),
        401,
        "wrong user name or password",
    )
    refused(
        anon.post("/login", {"user": "nobody", "password": "x"}), 401, "wrong user name or password"
    )
    refused(
        anon.post("/login", {"user": "cal", "password": "x"}), 401, "wrong user name or password"
    )
    token = anon.ok("POST", "/login", {"user": "bea", "password": "correct horse battery"})
    assert token["permissions"] == ["manage"] and token["projects"] is None
    assert Api(live, token["token"]).ok("GET", "/me")["name"] == "bea"
    stored = people.sql("SELECT password_hash FROM users WHERE name = 'bea'")
    assert stored.startswith("$argon2id$") and "correct horse" not in stored


def _login_from(server: LiveServer, address: str, user: str, password: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=30) as client:
        return client.post(f"{server.url}/api/v1/login", json={"user": user, "password": password})


def _retry_after_agrees(response: httpx.Response) -> None:
    seconds = int(response.headers["retry-after"])
    assert 0 < seconds <= 60 and f"retry in {seconds} s" in response.json()["message"]


def test_failed_authentication_is_rate_limited_per_source_and_account(tmp_path: Path) -> None:
    """Issue 14 item 10: valid tokens are never refused for others' failures; passwords are
    limited per address and per account; Retry-After says what the message says."""
    server = LiveServer(
        data=tmp_path / "data",
        env={
            "NIGHTWHEELS_AUTH_FAILURES_PER_MINUTE": "3",
            "NIGHTWHEELS_AUTH_FAILURES_PER_ACCOUNT": "2",
        },
    )
    server.data.mkdir()
    server.start()
    people = Accounts(server.data)
    try:
        people.user("dan", password="a good long password")
        people.user("erin", password="erin's long password")
        good = people.token("dan")
        bad = Api(server, "nwt_000000000000_wrong")
        refused(bad.get("/tokens"), 401, "invalid token")
        refused(Api(server).post("/login", {"user": "dan", "password": "nope"}), 401, "wrong")
        refused(bad.get("/me"), 401, "invalid token")
        # The address is over its limit: its bad tokens and passwords wait...
        response = bad.get("/me")
        refused(response, 429, "too many failed authentication attempts from 127.0.0.1")
        _retry_after_agrees(response)
        limited = Api(server).post("/login", {"user": "dan", "password": "a good long password"})
        refused(limited, 429, "from 127.0.0.1")
        _retry_after_agrees(limited)
        # ... but a valid token from the same address (a CI fleet behind one NAT) is served,
        # on the API and on the upload endpoint.
        assert Api(server, good).ok("GET", "/me")["name"] == "dan"
        upload = httpx.post(server.upload_url, auth=("__token__", good))
        assert upload.status_code == 400, upload.text
        # Password guessing for one account from many addresses: the account's limit.
        for address in ("127.0.0.2", "127.0.0.3"):
            refused(_login_from(server, address, "erin", "guess"), 401, "wrong")
        blocked = _login_from(server, "127.0.0.4", "erin", "erin's long password")
        refused(blocked, 429, "for 'erin'")
        _retry_after_agrees(blocked)
        # Another account from a fresh address is not affected.
        assert _login_from(server, "127.0.0.5", "dan", "a good long password").status_code == 201
    finally:
        people.close()
        server.stop()
