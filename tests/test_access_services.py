"""Access rules proven at the service layer, whichever edge calls them (issues 14 and 18).

In-process: one migrated SQLite database per module, services called directly, and the
JSON API through Starlette's test client where the edge's answer matters. Names are
distinct per test so the module shares one database.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from nightwheels.config import Settings
from nightwheels.core.names import is_valid_name, normalize_name, validate_label
from nightwheels.core.permissions import Role
from nightwheels.db.migrate import upgrade
from nightwheels.db.models import TrustedPublisher
from nightwheels.errors import Forbidden, InvalidName, NotFound
from nightwheels.server.app import create_app
from nightwheels.services import (
    access,
    accounts,
    audit,
    browse,
    compat,
    members,
    tokens,
    web_sessions,
)
from nightwheels.services.audit import SYSTEM
from nightwheels.services.auth import Principal, authenticate
from nightwheels.services.context import Services
from tests.support.wheels import make_wheel

API = "http://testserver/api/v1"


class World:
    """Users, roles and tokens made the local admin's way; principals from token secrets."""

    def __init__(self, data: Path) -> None:
        settings = Settings(data=data, database_url=None, storage=None)
        data.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database)
        self.services = Services.from_settings(settings)
        self.app = create_app(settings, self.services)

    def user(self, name: str, *, admin: bool = False, organisation: str | None = None) -> str:
        with self.services.db.write() as session:
            accounts.create_user(session, SYSTEM, name, organisation=organisation, is_admin=admin)
        return name

    def role(self, project: str, user: str, role: str = "admin") -> None:
        with self.services.db.write() as session:
            proj = accounts.get_or_create_project(session, SYSTEM, project)
            accounts.set_role(session, SYSTEM, accounts.get_user(session, user), proj, Role(role))

    def token(self, user: str, *projects: str, permission: str = "manage", name: str = "") -> str:
        with self.services.db.write() as session:
            created = tokens.create_token(
                session,
                SYSTEM,
                accounts.get_user(session, user),
                name=name or f"{user}-{permission}-{'-'.join(projects) or 'all'}",
                projects=list(projects) or None,
                permissions=[permission],
            )
        return created.secret

    def principal(self, secret: str) -> Principal:
        with self.services.db.read() as session:
            return authenticate(session, secret)

    def call(self, method: str, path: str, secret: str, body: Any = None) -> httpx.Response:
        """One JSON API request, in process."""
        headers = {"Authorization": f"Bearer {secret}"}
        return self.request(method, API + path, json=body, headers=headers)

    def upload(self, secret: str, wheel: Path, *, label: str | None = None) -> httpx.Response:
        """The legacy upload protocol (as twine speaks it), in process, answering JSON."""
        data = wheel.read_bytes()
        name, version = wheel.name.split("-")[:2]
        form = {":action": "file_upload", "name": name, "version": version}
        form |= {"filetype": "bdist_wheel", "sha256_digest": hashlib.sha256(data).hexdigest()}
        if label is not None:
            form["label"] = label
        return self.request(
            "POST",
            "http://testserver/legacy/",
            auth=("__token__", secret),
            headers={"Accept": "application/json"},
            data=form,
            files={"content": (wheel.name, data, "application/octet-stream")},
        )

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """In a thread of its own: asyncio.run() refuses to start inside another test's loop."""

        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport) as client:
                return await client.request(method, url, **kwargs)

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    created = World(tmp_path_factory.mktemp("access") / "data")
    try:
        yield created
    finally:
        created.services.close()


def prefix(secret: str) -> str:
    return secret.split("_")[1]


def refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"} and reason in body["message"], body


# -- issue 14, item 1: a token's reach never grows ------------------------------------------


def test_scoped_token_cannot_rotate_its_owners_wider_tokens(world: World) -> None:
    """The reviewer's exploit: a proja-scoped manage token rotates its owner's unscoped one."""
    world.user("rita")
    world.role("rita-a", "rita")
    world.role("rita-c", "rita")
    unscoped = world.token("rita", name="everything")
    scoped = world.token("rita", "rita-a", name="a-only")
    other_upload = world.token("rita", "rita-c", permission="upload", name="c-ci")
    refused(world.call("POST", f"/tokens/{prefix(unscoped)}/rotate", scoped), 403, "cannot rotate")
    refused(
        world.call("POST", f"/tokens/{prefix(other_upload)}/rotate", scoped), 403, "cannot rotate"
    )
    refused(world.call("DELETE", f"/tokens/{prefix(unscoped)}", scoped), 403, "cannot revoke")
    refused(world.call("DELETE", f"/tokens/{prefix(other_upload)}", scoped), 403, "cannot revoke")
    # Both tokens still work: nothing was rotated or revoked.
    assert world.call("GET", "/users", unscoped).status_code == 403  # not a site admin: but valid
    assert world.principal(other_upload).projects == frozenset({"rita-c"})
    # The same rules hold when the service is called directly (any edge: API, web, CLI).
    with world.services.db.write() as session, pytest.raises(Forbidden, match="cannot rotate"):
        tokens.rotate_token(session, SYSTEM, prefix(unscoped), world.principal(scoped))
    # Within its reach, a scoped token rotates and revokes (the new token keeps the scope).
    mine = world.token("rita", "rita-a", permission="upload", name="a-ci")
    rotated = world.call("POST", f"/tokens/{prefix(mine)}/rotate", scoped)
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["projects"] == ["rita-a"]
    assert world.call("DELETE", f"/tokens/{rotated.json()['prefix']}", scoped).status_code == 200


def test_rotation_never_widens_a_site_admins_scoped_token(world: World) -> None:
    """A site admin's proja-scoped token cannot turn the admin's unscoped token into a new one
    that reads the user list: the rotated token would reach every project."""
    world.user("root-r", admin=True)
    world.role("root-r-a", "root-r")
    unscoped = world.token("root-r", name="root-all")
    scoped = world.token("root-r", "root-r-a", name="root-a")
    refused(world.call("GET", "/users", scoped), 403, "unscoped manage token")
    refused(world.call("POST", f"/tokens/{prefix(unscoped)}/rotate", scoped), 403, "cannot rotate")
    assert world.call("GET", "/users", unscoped).status_code == 200  # not revoked by the attempt


def test_scoped_token_never_acts_on_its_owner_outside_its_projects(world: World) -> None:
    """Today a proja-scoped token removes its owner from projb: 200."""
    world.user("sam")
    world.user("sam-peer")
    world.role("sam-a", "sam")
    world.role("sam-b", "sam", "uploader")
    world.role("sam-b", "sam-peer")  # sam-b keeps an admin
    scoped = world.token("sam", "sam-a")
    refused(world.call("DELETE", "/projects/sam-b/members/sam", scoped), 403, "not scoped to")
    with world.services.db.write() as session, pytest.raises(Forbidden, match="not scoped to"):
        members.remove_member(session, SYSTEM, "sam-b", "sam", world.principal(scoped))
    # Its owner's other tokens are not listed to it either.
    world.token("sam", "sam-b", permission="upload", name="sam-b-ci")
    listed = world.call("GET", "/tokens", scoped).json()
    assert {t["name"] for t in listed} == {"sam-manage-sam-a"}
    # An unscoped token of sam's may leave sam-b.
    unscoped = world.token("sam")
    assert world.call("DELETE", "/projects/sam-b/members/sam", unscoped).status_code == 200


def test_scoped_token_sees_and_withdraws_only_its_projects_requests(world: World) -> None:
    world.user("tess")
    everything = world.token("tess")
    filed = world.call(
        "POST", "/access-requests", everything, {"project": "tess-b", "reason": "I maintain it"}
    )
    assert filed.status_code == 201, filed.text
    number = filed.json()["id"]
    scoped = world.token("tess", "tess-a")
    refused(world.call("POST", f"/access-requests/{number}/withdraw", scoped), 403, "not scoped")
    refused(world.call("GET", f"/access-requests/{number}", scoped), 403, "not scoped")
    assert world.call("GET", "/access-requests", scoped).json() == []
    with world.services.db.write() as session, pytest.raises(Forbidden, match="not scoped"):
        access.withdraw(session, world.principal(scoped), number)
    assert world.call("GET", f"/access-requests/{number}", everything).status_code == 200


# -- issue 14, item 8: names and labels ------------------------------------------------------

# A trailing newline, the long s, the dotless i and the Kelvin sign all passed the old
# ``^...$`` + ``.match`` + IGNORECASE pattern, and approved requests created projects from them.
HOSTILE_NAMES = ["proja\n", "proj\u017f", "pr\u0131ja", "\u212aelvin", "a-", "-a", "a b", ""]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_project_names_are_refused(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(InvalidName, match="not a valid project name"):
        normalize_name(name)


@pytest.mark.parametrize("label", ["main\n", "\u212a", "Main", "a" * 65, "-a", ""])
def test_hostile_labels_are_refused(label: str) -> None:
    with pytest.raises(InvalidName, match="not a valid label"):
        validate_label(label)


def test_names_still_accepted_and_normalised() -> None:
    assert normalize_name("Proj_A.b") == "proj-a-b"
    assert validate_label("nightly-3.13") == "nightly-3.13"
    assert is_valid_name("x" * 200) and not is_valid_name("x" * 201)


def test_no_project_or_label_from_a_hostile_name(world: World, tmp_path: Path) -> None:
    """Through the edges: an access request and an upload label are refused with 400."""
    world.user("uli")
    uli = world.token("uli")
    for name in HOSTILE_NAMES[:4]:
        refused(
            world.call("POST", "/access-requests", uli, {"project": name, "reason": "mine"}),
            400,
            "not a valid project name",
        )
    world.role("uli-proj", "uli")
    token = world.token("uli", "uli-proj", permission="upload")
    wheel = make_wheel(tmp_path, "uli-proj", "1.0")
    refused(world.upload(token, wheel, label="main\n"), 400, "not a valid label")
    assert world.upload(token, wheel, label="main").status_code == 200


# -- issue 14, item 6: spoofed downstream results ------------------------------------------


def _result(downstream: str, wheel: Path, **extra: Any) -> dict[str, Any]:
    """What ``nightwheels report --server`` posts after a downstream test run."""
    return {
        "downstream": downstream,
        "outcome": "failed",
        "python": "3.13.1",
        "platform": "linux-x86_64",
        "tested_at": "2026-11-25T06:00:00+00:00",
        "culprits": ["up-lib"],
        "nightlies": [
            {
                "project": "up-lib",
                "version": "1.0",
                "filename": wheel.name,
                "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            }
        ],
        **extra,
    }


def test_only_a_downstreams_members_or_publisher_report_for_it(
    world: World, tmp_path: Path
) -> None:
    world.user("upa")  # the upstream's maintainer
    world.user("dora")  # a member of the downstream
    world.user("mallory")  # neither
    world.role("up-lib", "upa")
    world.role("down-app", "upa")
    world.role("down-app", "dora", "uploader")
    wheel = make_wheel(tmp_path, "up-lib", "1.0")
    assert world.upload(world.token("upa", "up-lib", permission="upload"), wheel).is_success
    mallory = world.token("mallory")
    # A report token for someone else's project is refused when made ...
    refused(
        world.call("POST", "/tokens", mallory, {"permission": "report", "projects": ["down-app"]}),
        403,
        "'mallory' is not a member of project 'down-app'",
    )
    # ... and a report made with an unscoped one is refused when posted.
    anywhere = world.call("POST", "/tokens", mallory, {"permission": "report"}).json()["token"]
    refused(
        world.call("POST", "/compat/results", anywhere, _result("down-app", wheel)),
        403,
        "only its members (or its trusted publisher) may report",
    )
    refused(
        world.call("POST", "/compat/results", anywhere, _result("nowhere-app", wheel)),
        403,
        "not a project on this index",
    )
    assert world.call("GET", "/compat/upstream/up-lib", anywhere).json()["results"] == []

    # The downstream's member reports; a link elsewhere is never shown with the result.
    dora = world.call("POST", "/tokens", world.token("dora"), {"permission": "report"})
    evil = {"repository": "https://evil.example/x", "run_url": "https://evil.example/run/1"}
    posted = world.call(
        "POST", "/compat/results", dora.json()["token"], _result("down-app", wheel, **evil)
    )
    assert posted.status_code == 201, posted.text
    (row,) = world.call("GET", "/compat/upstream/up-lib", anywhere).json()["results"]
    assert row["downstream"] == "down-app" and row["culprit"] is True
    assert row["run_url"] is None and row["repository_url"] is None
    history = world.call("GET", "/compat/downstream/down-app", anywhere).json()
    assert history["project"] == "down-app" and history["runs"][0]["run_url"] is None
    page = world.request("GET", "http://testserver/project/up-lib/")
    assert "down-app" in page.text and "evil.example" not in page.text

    # Links shown are the downstream's own: its repository on this index, runs inside it.
    with world.services.db.write() as session:
        accounts.get_project(session, "down-app").repository_url = "https://github.com/org/down-app"
    inside = "https://github.com/org/down-app/actions/runs/7"
    for run_url, shown in ((inside, inside), ("https://github.com/org/down-app-evil/runs/1", None)):
        body = _result("down-app", wheel, run_url=run_url)
        assert world.call("POST", "/compat/results", dora.json()["token"], body).status_code == 201
        (row,) = world.call("GET", "/compat/upstream/up-lib", anywhere).json()["results"]
        assert row["run_url"] == shown
        assert row["repository_url"] == "https://github.com/org/down-app"
        (latest, *_) = world.call("GET", "/compat/downstream/down-app", anywhere).json()["runs"]
        assert latest["run_url"] == shown  # the per-downstream history, by the same rule
    page = world.request("GET", "http://testserver/project/up-lib/")
    assert (
        'href="https://github.com/org/down-app"' in page.text and "down-app-evil" not in page.text
    )

    # Removing the member stops their reports at once; the service refuses whoever calls it.
    with world.services.db.write() as session:
        members.remove_member(session, SYSTEM, "down-app", "dora")
    refused(
        world.call("POST", "/compat/results", dora.json()["token"], _result("down-app", wheel)),
        403,
        "'dora' is not a member of 'down-app'",
    )


def test_a_trusted_publisher_reports_for_its_own_project_only(world: World) -> None:
    world.user("pia")
    world.role("pub-app", "pia")
    world.role("pub-other", "pia")
    with world.services.db.write() as session:
        project = accounts.get_project(session, "pub-app")
        publisher = TrustedPublisher(
            project_id=project.id, repository="org/pub-app", workflow="nightly.yml"
        )
        session.add(publisher)
        session.flush()
        principal = Principal(
            user_id=None,
            user_name="github:org/pub-app",
            is_admin=False,
            token_id=0,
            token_name="oidc",
            permissions=frozenset({"upload"}),
            projects=frozenset({"pub-app"}),
            expires_at=None,
            publisher_id=publisher.id,
        )
        assert compat.require_reporter(session, principal, "pub-app").name == "pub-app"
        with pytest.raises(Forbidden, match="not a trusted publisher of 'pub-other'"):
            compat.require_reporter(session, principal, "pub-other")
        # One workflow registered on both: its token names both projects (and one of the
        # registrations, whichever): it reports for each.
        both = replace(principal, projects=frozenset({"pub-app", "pub-other"}))
        assert compat.require_reporter(session, both, "pub-other").name == "pub-other"


# -- issue 14, item 9: the conflict-of-interest rule cannot be evaded ----------------------


def test_nobody_changes_their_own_organisation(world: World) -> None:
    """The reviewer's exploit: root2 moved to 'Quansight Inc.' ... and approved for Quansight."""
    world.user("root2", admin=True, organisation="NumFOCUS")
    root2 = world.token("root2")
    for change in ({"organisation": "Quansight Inc."}, {"organisation": None}):
        refused(world.call("PATCH", "/users/root2", root2, change), 403, "your own organisation")
    refused(world.call("PATCH", "/users/root2", root2, {"is_admin": False}), 403, "your own admin")
    with world.services.db.write() as session, pytest.raises(Forbidden, match="own organisation"):
        user = accounts.get_user(session, "root2")
        accounts.update_user(
            session, SYSTEM, user, organisation="Quansight Inc.", principal=world.principal(root2)
        )
    with world.services.db.read() as session:
        assert accounts.get_user(session, "root2").organisation == "NumFOCUS"
    # Another site admin may; a user who is not one may not change anyone.
    world.user("root2-peer", admin=True)
    world.user("plain2")
    refused(world.call("PATCH", "/users/root2", world.token("plain2"), {}), 403, "only site admins")
    assert world.call(
        "PATCH", "/users/root2", world.token("root2-peer"), {"email": "r@x"}
    ).is_success


def test_conflict_uses_the_organisations_held_since_the_request(world: World) -> None:
    world.user("qa-root", admin=True, organisation="Quansight Inc.")
    world.user("qa-other-root", admin=True, organisation="Elsewhere")
    world.user("qa-fair", admin=True, organisation="Fair Org")
    world.user("qa-bob", organisation="Quansight Inc.")
    filed = world.call(
        "POST", "/access-requests", world.token("qa-bob"), {"project": "qa-proj", "reason": "mine"}
    ).json()["id"]
    # After filing, another admin moves qa-root elsewhere: the old organisation still counts.
    moved = world.call(
        "PATCH", "/users/qa-root", world.token("qa-other-root"), {"organisation": "Neutral Ltd"}
    )
    assert moved.json()["organisation"] == "Neutral Ltd"
    refused(
        world.call("POST", f"/access-requests/{filed}/approve", world.token("qa-root")),
        403,
        "both from 'Quansight Inc.' (since the request was filed)",
    )
    # Moving the requester after filing does not clear it either.
    world.call("PATCH", "/users/qa-bob", world.token("qa-other-root"), {"organisation": "Solo"})
    with world.services.db.write() as session, pytest.raises(Forbidden, match="both from"):
        access.approve(session, world.principal(world.token("qa-root")), filed)
    # The audit log shows each change, from what to what.
    with world.services.db.read() as session:
        events = audit.list_events(
            session, audit.EventQuery(action="user.update", actor="qa-other-root")
        )
    changes = [
        (e.target, e.details["previous"]["organisation"], e.details["organisation"]) for e in events
    ]
    assert ("qa-root", "Quansight Inc.", "Neutral Ltd") in changes
    assert ("qa-bob", "Quansight Inc.", "Solo") in changes
    # An admin from another organisation throughout approves.
    approved = world.call("POST", f"/access-requests/{filed}/approve", world.token("qa-fair"))
    assert approved.json()["status"] == "approved", approved.text


# -- issue 18, item 1: each rule in a service, the same answer from every edge --------------


def test_user_administration_rules_live_in_the_service(world: World) -> None:
    world.user("adm18", admin=True)
    world.user("adm18-scoped", admin=True)
    world.role("adm18-proj", "adm18-scoped")
    world.user("plain18")
    admin = world.principal(world.token("adm18"))
    scoped = world.principal(world.token("adm18-scoped", "adm18-proj"))
    plain = world.principal(world.token("plain18"))
    for who, reason in ((plain, "only site admins"), (scoped, "unscoped manage token")):
        with world.services.db.write() as session:
            with pytest.raises(Forbidden, match=reason):
                accounts.create_user(session, SYSTEM, "new18", principal=who)
            with pytest.raises(Forbidden, match=reason):
                accounts.list_users(session, who)
            with pytest.raises(Forbidden, match=reason):
                accounts.update_user(
                    session, SYSTEM, accounts.get_user(session, "plain18"), disabled=True,
                    principal=who,
                )  # fmt: skip
    with world.services.db.write() as session:
        me = accounts.get_user(session, "adm18")
        for change in ({"is_admin": False}, {"disabled": True}, {"organisation": "X"}):
            with pytest.raises(Forbidden, match="cannot change your own"):
                accounts.update_user(session, SYSTEM, me, principal=admin, **change)  # type: ignore[arg-type]
        made = accounts.create_user(session, SYSTEM, "new18", principal=admin)
        assert made.name in [u.name for u in accounts.list_users(session, admin)]


def _web_cookie(world: World, user: str) -> dict[str, str]:
    with world.services.db.write() as session:
        started = web_sessions.start(
            session, world.services.settings, accounts.get_user(session, user), "test"
        )
    return {"Cookie": f"nw_session={started.cookie}"}


def test_one_audit_log_rule_for_the_api_and_the_web(world: World) -> None:
    """The API let project admins read their project's events and the web did not: now both
    ask ``services.audit.read_events``, and give the same answer to the same person."""
    world.user("aud-root", admin=True)
    world.user("aud-admin")
    world.user("aud-uploader")
    world.role("aud-proj", "aud-admin")
    world.role("aud-proj", "aud-uploader", "uploader")
    world.role("aud-else", "aud-root")
    admin = world.principal(world.token("aud-admin"))
    project_query = audit.EventQuery(project="Aud_Proj")
    with world.services.db.read() as session:
        events = audit.read_events(session, admin, project_query)
        assert events and {e.project for e in events} == {"aud-proj"}
        with pytest.raises(Forbidden, match="only site admins may read the whole audit log"):
            audit.read_events(session, admin, audit.EventQuery())
        with pytest.raises(Forbidden, match="only admins of project 'aud-else'"):
            audit.read_events(session, admin, audit.EventQuery(project="aud-else"))
        uploader = world.principal(world.token("aud-uploader"))
        with pytest.raises(Forbidden, match="only admins of project 'aud-proj'"):
            audit.read_events(session, uploader, project_query)
        scoped_root = world.principal(world.token("aud-root", "aud-else"))
        with pytest.raises(Forbidden, match="whole audit log"):
            audit.read_events(session, scoped_root, audit.EventQuery())
        root = world.principal(world.token("aud-root"))
        assert {e.project for e in audit.read_events(session, root, audit.EventQuery())} >= {
            "aud-proj",
            "aud-else",
        }
    # The edges agree: the project's admin reads its log on both, the whole log on neither.
    api_token = world.token("aud-admin", name="aud-api")
    web = _web_cookie(world, "aud-admin")
    assert world.call("GET", "/audit?project=aud-proj", api_token).status_code == 200
    page = world.request("GET", "http://testserver/admin/audit?project=aud-proj", headers=web)
    assert page.status_code == 200 and "role.set" in page.text
    assert world.call("GET", "/audit", api_token).status_code == 403
    page = world.request("GET", "http://testserver/admin/audit", headers=web)
    assert page.status_code == 403 and "only site admins may read the whole audit log" in page.text
    # The uploader is refused on both.
    assert (
        world.call("GET", "/audit?project=aud-proj", world.token("aud-uploader")).status_code == 403
    )
    page = world.request(
        "GET",
        "http://testserver/admin/audit?project=aud-proj",
        headers=_web_cookie(world, "aud-uploader"),
    )
    assert page.status_code == 403


def test_project_detail_is_read_by_a_service(world: World, tmp_path: Path) -> None:
    world.user("det18")
    world.role("det18-proj", "det18")
    wheel = make_wheel(tmp_path, "det18-proj", "1.0")
    assert world.upload(world.token("det18", "det18-proj", permission="upload"), wheel).is_success
    with world.services.db.read() as session:
        found = browse.project_files(session, "Det18_Proj")
        assert found.name == "det18-proj" and [f.filename for f in found.files] == [wheel.name]
        with pytest.raises(NotFound, match="no project named 'det18-nope'"):
            browse.project_files(session, "det18-nope")
    detail = world.request("GET", "http://testserver/api/v1/projects/det18-proj").json()
    assert [f["filename"] for f in detail["files"]] == [wheel.name]


def test_conflict_reads_the_organisation_at_filing_from_older_audit_events(world: World) -> None:
    """Events written before ``previous`` was recorded still give the value at filing."""
    world.user("old-root", admin=True, organisation="Acme")
    world.user("old-bob", organisation="Acme")
    filed = world.call(
        "POST", "/access-requests", world.token("old-bob"), {"project": "old-proj", "reason": "x"}
    ).json()["id"]
    with world.services.db.write() as session:  # a change recorded the old way
        accounts.get_user(session, "old-root").organisation = "Other"
        audit.record(session, SYSTEM, "user.update", target="old-root", organisation="Other")
    refused(
        world.call("POST", f"/access-requests/{filed}/approve", world.token("old-root")),
        403,
        "both from 'Acme' (since the request was filed)",
    )
