"""Access requests, membership and the audit log through the live JSON API.

Every permission rule has a test that the wrong actor is refused with 403 and a reason.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.access import Accounts, Api, forbidden, live, people, refused, upload
from tests.support.server import LiveServer
from tests.support.wheels import make_wheel

__all__ = ["live", "people"]  # module-scoped fixtures


def _file(api: Api, project: str, reason: str = "I maintain it; nightly wheels for CI") -> int:
    return api.ok("POST", "/access-requests", {"project": project, "reason": reason})["id"]


def test_request_approve_creates_project_and_admin(live: LiveServer, people: Accounts) -> None:
    people.user("ada", organisation="Quansight")
    people.user("root1", admin=True, organisation="NumFOCUS")
    ada, root = Api(live, people.token("ada")), Api(live, people.token("root1"))

    req = ada.ok(
        "POST",
        "/access-requests",
        {
            "project": "Ada.Lib",
            "reason": "I am ada, maintainer of ada-lib",
            "repository_url": "https://github.com/ada/ada-lib",
        },
    )
    assert req["project"] == "ada-lib" and req["status"] == "pending"
    assert req["project_exists"] is False
    # The requester sees it; site admins see everyone's pending requests.
    assert [r["id"] for r in ada.ok("GET", "/access-requests")] == [req["id"]]
    assert req["id"] in [r["id"] for r in root.ok("GET", "/access-requests", all=True)]

    root.ok("POST", f"/access-requests/{req['id']}/comments", {"body": "Which CI uploads?"})
    ada.ok("POST", f"/access-requests/{req['id']}/comments", {"body": "GitHub Actions"})
    done = root.ok("POST", f"/access-requests/{req['id']}/approve", {"reason": "checked"})
    assert done["status"] == "approved" and done["decided_by"] == "root1"
    assert [c["body"] for c in done["comments"]] == ["Which CI uploads?", "GitHub Actions"]
    assert [c["author"] for c in done["comments"]] == ["root1", "ada"]

    members = Api(live).ok("GET", "/projects/ada-lib/members")
    assert [(m["user"], m["role"]) for m in members["members"]] == [("ada", "admin")]
    assert any("1 admin" in w for w in members["warnings"])
    assert live.cli("project", "show", "ada-lib", "--server", live.url).returncode == 0

    # Decided requests are closed.
    refused(root.post(f"/access-requests/{req['id']}/approve"), 409, "already approved")
    refused(ada.post(f"/access-requests/{req['id']}/withdraw"), 409, "already approved")
    refused(
        ada.post(f"/access-requests/{req['id']}/comments", {"body": "thanks"}),
        409,
        "already approved",
    )


def test_approval_rules_refuse_conflicted_reviewers(live: LiveServer, people: Accounts) -> None:
    people.user("bob", organisation="Acme Corp")
    people.user("root-acme", admin=True, organisation="  acme   CORP ")
    people.user("root-member", admin=True, organisation="Elsewhere")
    people.user("root-self", admin=True, organisation="Self Inc")
    people.user("carol", organisation="Other")
    people.role("bob-existing", "root-member", "uploader")
    bob = Api(live, people.token("bob"))

    new = _file(bob, "bob-new")
    existing = _file(bob, "bob-existing")
    # Same organisation (case and spacing do not matter).
    forbidden(
        Api(live, people.token("root-acme")).post(f"/access-requests/{new}/approve"),
        "both from",
    )
    # A member of the project, any role.
    forbidden(
        Api(live, people.token("root-member")).post(f"/access-requests/{existing}/approve"),
        "you are a member (uploader)",
    )
    # Not a site admin.
    forbidden(
        Api(live, people.token("carol")).post(f"/access-requests/{new}/approve"),
        "only site admins may approve",
    )
    forbidden(
        Api(live, people.token("carol")).post(f"/access-requests/{new}/deny", {"reason": "no"}),
        "only site admins may deny",
    )
    # An upload token never manages, even a site admin's.
    people.role("root-self-proj", "root-self", "admin")
    upload_token = people.token("root-self", "root-self-proj", permission="upload")
    forbidden(Api(live, upload_token).post(f"/access-requests/{new}/approve"), "is an upload token")
    # A site admin's manage token scoped to projects cannot review.
    scoped = people.token("root-self", "root-self-proj", name="scoped")
    forbidden(Api(live, scoped).post(f"/access-requests/{new}/approve"), "unscoped manage token")
    # Nobody approves their own request.
    own = _file(Api(live, people.token("root-self", name="own")), "root-self-own")
    forbidden(
        Api(live, people.token("root-self", name="again")).post(f"/access-requests/{own}/approve"),
        "your own request",
    )
    # An impartial admin may.
    assert (
        Api(live, people.token("root-member", name="m2")).ok(
            "POST", f"/access-requests/{new}/approve"
        )["status"]
        == "approved"
    )
    # Nothing was half-done by the refusals: bob-existing has no admin yet.
    roles = Api(live).ok("GET", "/projects/bob-existing/members")["members"]
    assert [(m["user"], m["role"]) for m in roles] == [("root-member", "uploader")]


def test_deny_withdraw_visibility_and_duplicates(live: LiveServer, people: Accounts) -> None:
    people.user("dora", organisation="D")
    people.user("eve", organisation="E")
    people.user("root-d", admin=True, organisation="R")
    dora, eve = Api(live, people.token("dora")), Api(live, people.token("eve"))
    root = Api(live, people.token("root-d"))

    first = _file(dora, "dora-proj")
    refused(
        dora.post("/access-requests", {"project": "Dora_Proj", "reason": "again"}), 409, f"#{first}"
    )
    refused(
        dora.post("/access-requests", {"project": "bad name!", "reason": "x"}),
        400,
        "not a valid project name",
    )
    refused(
        dora.post("/access-requests", {"project": "dora-x", "reason": "   "}),
        400,
        "reason is empty",
    )

    forbidden(eve.get(f"/access-requests/{first}"), "is not yours")
    forbidden(eve.post(f"/access-requests/{first}/comments", {"body": "hi"}), "is not yours")
    forbidden(eve.post(f"/access-requests/{first}/withdraw"), "only its requester")
    forbidden(eve.get("/access-requests", all=True), "only site admins")
    refused(root.post(f"/access-requests/{first}/deny", {}), 422, "reason")
    denied = root.ok("POST", f"/access-requests/{first}/deny", {"reason": "no CI yet"})
    assert denied["status"] == "denied" and denied["decision_reason"] == "no CI yet"
    assert dora.ok("GET", f"/access-requests/{first}")["decision_reason"] == "no CI yet"

    second = _file(dora, "dora-proj")  # a denied request may be filed again
    assert dora.ok("POST", f"/access-requests/{second}/withdraw")["status"] == "withdrawn"
    statuses = {r["id"]: r["status"] for r in dora.ok("GET", "/access-requests", status="all")}
    assert statuses == {first: "denied", second: "withdrawn"}
    refused(root.get("/access-requests/999999"), 404, "no access request #999999")

    # Already a member: no request needed.
    people.role("dora-member", "dora", "uploader")
    refused(
        dora.post("/access-requests", {"project": "dora-member", "reason": "x"}),
        409,
        "already uploader",
    )


def test_members_add_remove_transfer_and_last_admin(live: LiveServer, people: Accounts) -> None:
    for name, org in [("fay", "F"), ("gil", "G"), ("hal", "F"), ("ivy", None)]:
        people.user(name, organisation=org)
    people.role("fay-proj", "fay", "admin")
    fay, gil = Api(live, people.token("fay")), Api(live, people.token("gil"))
    path = "/projects/fay-proj/members"

    forbidden(gil.put(f"{path}/hal", {"role": "uploader"}), "only admins of project 'fay-proj'")
    m = fay.ok("PUT", f"{path}/gil", {"role": "uploader"})
    assert {x["user"]: x["role"] for x in m["members"]} == {"fay": "admin", "gil": "uploader"}
    # An uploader cannot manage the project.
    forbidden(gil.put(f"{path}/hal", {"role": "uploader"}), "'gil' is uploader of it")
    forbidden(gil.delete(f"{path}/fay"), "only admins")
    forbidden(gil.post("/projects/fay-proj/transfer", {"user": "gil"}), "only admins")
    # An upload token of the admin cannot manage either.
    upload_token = people.token("fay", "fay-proj", permission="upload")
    forbidden(Api(live, upload_token).put(f"{path}/hal"), "is an upload token")
    # A manage token scoped to another project cannot manage this one.
    people.role("fay-other", "fay", "admin")
    scoped = people.token("fay", "fay-other", name="scoped")
    forbidden(Api(live, scoped).put(f"{path}/hal"), "is not scoped to 'fay-proj'")

    # The last admin can be neither removed nor demoted.
    refused(fay.delete(f"{path}/fay"), 409, "no admin left")
    refused(fay.put(f"{path}/fay", {"role": "uploader"}), 409, "no admin left")
    refused(fay.put(f"{path}/nobody"), 404, "no user named 'nobody'")
    refused(fay.put(f"{path}/gil", {"role": "owner"}), 422, "role")

    # Two admins from one organisation: warned.
    m = fay.ok("PUT", f"{path}/hal", {"role": "admin"})
    assert any("all admins" in w and "'F'" in w for w in m["warnings"])
    m = fay.ok("PUT", f"{path}/hal", {"role": "uploader"})

    # Transfer: gil becomes admin, fay steps down to uploader.
    m = fay.ok("POST", "/projects/fay-proj/transfer", {"user": "gil"})
    assert {x["user"]: x["role"] for x in m["members"]} == {
        "fay": "uploader",
        "gil": "admin",
        "hal": "uploader",
    }
    forbidden(fay.put(f"{path}/ivy"), "'fay' is uploader of it")
    # Anyone may leave (not the last admin); gil removes hal.
    gil.ok("DELETE", f"{path}/hal")
    fay.ok("DELETE", f"{path}/fay")
    assert [x["user"] for x in gil.ok("GET", path)["members"]] == ["gil"]


def test_removed_member_loses_upload_at_once(
    live: LiveServer, people: Accounts, tmp_path: Path
) -> None:
    people.user("jon")
    people.user("kim")
    people.role("jon-proj", "jon", "admin")
    people.role("jon-proj", "kim", "uploader")
    kim_upload = people.token("kim", "jon-proj", permission="upload")
    first = upload(live, kim_upload, make_wheel(tmp_path / "a", "jon-proj", "1.0.dev1"))
    assert first.status_code == 200, first.text

    Api(live, people.token("jon")).ok("DELETE", "/projects/jon-proj/members/kim")
    again = upload(live, kim_upload, make_wheel(tmp_path / "b", "jon-proj", "1.0.dev2"))
    forbidden(again, "'kim' is not a member of project 'jon-proj'")
    # Added back, the same token works again: rights follow the role, not the token.
    Api(live, people.token("jon", name="j2")).ok(
        "PUT", "/projects/jon-proj/members/kim", {"role": "uploader"}
    )
    third = upload(live, kim_upload, make_wheel(tmp_path / "c", "jon-proj", "1.0.dev3"))
    assert third.status_code == 200, third.text


def test_audit_log_records_actor_source_and_pages(live: LiveServer, people: Accounts) -> None:
    people.user("lea", organisation="L")
    people.user("max", organisation="M")
    people.user("root-audit", admin=True, organisation="R")
    lea, root = Api(live, people.token("lea")), Api(live, people.token("root-audit"))
    rid = _file(lea, "lea-proj")
    root.ok("POST", f"/access-requests/{rid}/approve")
    lea.ok("PUT", "/projects/lea-proj/members/max", {"role": "uploader"})
    created = lea.ok("POST", "/tokens", {"projects": ["lea-proj"], "name": "ci"})
    lea.ok("DELETE", f"/tokens/{created['prefix']}")

    page = root.ok("GET", "/audit", project="lea-proj")
    actions = [e["action"] for e in page["events"]]
    # Events of a token that reaches only this project belong to its log too.
    assert actions[:2] == ["token.revoke", "token.create"]
    assert actions[2:6] == ["role.set", "access.approve", "role.set", "project.create"]
    assert actions[-1] == "access.request"
    by_action = {e["action"]: e for e in page["events"]}
    assert by_action["access.request"]["actor"] == "lea"
    assert by_action["access.approve"]["actor"] == "root-audit"
    assert all(e["source"] == "127.0.0.1" for e in page["events"])
    tokens = root.ok("GET", "/audit", action="token.", actor="lea")["events"]
    assert [e["action"] for e in tokens[:2]] == ["token.revoke", "token.create"]
    assert tokens[0]["details"]["prefix"] == created["prefix"]

    # Paging: ``before`` walks back without overlap.
    one = root.ok("GET", "/audit", limit=2)
    two = root.ok("GET", "/audit", limit=2, before=one["next_before"])
    assert one["next_before"] == one["events"][-1]["id"]
    assert max(e["id"] for e in two["events"]) < min(e["id"] for e in one["events"])

    # Project admins read their project's events; nobody else reads anything.
    assert lea.ok("GET", "/audit", project="lea-proj")["events"]
    forbidden(lea.get("/audit"), "only site admins may read the whole audit log")
    max_ = Api(live, people.token("max"))
    forbidden(max_.get("/audit", project="lea-proj"), "only admins of project 'lea-proj'")
    refused(Api(live).get("/audit"), 401, "authentication required")


def test_user_administration_is_for_site_admins(live: LiveServer, people: Accounts) -> None:
    people.user("ned")
    people.user("root-users", admin=True)
    ned, root = Api(live, people.token("ned")), Api(live, people.token("root-users"))
    forbidden(ned.get("/users"), "only site admins may list users")
    forbidden(ned.post("/users", {"name": "x1"}), "only site admins may create users")
    made = root.ok(
        "POST", "/users", {"name": "olga", "organisation": "O", "password": "a long password"}
    )
    assert made["has_password"] and not made["is_admin"]
    refused(root.post("/users", {"name": "olga"}), 409, "already exists")
    refused(root.post("/users", {"name": "bad name"}), 400, "not a valid user name")
    refused(root.post("/users", {"name": "pat", "password": "short"}), 400, "at least 10")
    # The user with a bad password was not half-created.
    assert "pat" not in [u["name"] for u in root.ok("GET", "/users")]
    forbidden(ned.http.patch("/users/ned", json={"is_admin": True}), "only site admins")
    forbidden(root.http.patch("/users/root-users", json={"is_admin": False}), "your own admin")
    updated = root.http.patch("/users/ned", json={"disabled": True}).json()
    assert updated["disabled"] is True
    refused(ned.get("/me"), 401, "disabled")
