"""The CLI end to end: local admin bootstrap on the server machine, then the API commands."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import clients
from tests.support.cli import Cli
from tests.support.server import LiveServer, free_port
from tests.support.wheels import make_wheel


def _as(server: LiveServer, token: str | None) -> Cli:
    """``nightwheels`` as a remote user: NIGHTWHEELS_SERVER and NIGHTWHEELS_TOKEN set."""
    return Cli(server, token)


def test_bootstrap_request_review_tokens_and_audit(server: LiveServer, tmp_path: Path) -> None:
    # On the server machine: the first site admin and their manage token.
    server.cli("admin", "user", "create", "root", "--admin", "--organisation", "NumFOCUS")
    root_token = server.cli(
        "token", "create", "--user", "root", "--permission", "manage", "--name", "admin"
    ).stdout.strip()
    local = Cli(server, remote=False)
    local(
        "user",
        "create",
        "alice",
        "--organisation",
        "Quansight",
        "--password-stdin",
        input="alice's long password\n",
    )
    out = local("admin", "user", "list", "--json")
    assert {u["name"]: u["has_password"] for u in json.loads(out.stdout)} == {
        "alice": True,
        "root": False,
    }

    # Alice signs in with her password and files a request.
    anon = _as(server, None)
    alice_token = anon(
        "login", "--user", "alice", "--password-stdin", input="alice's long password\n"
    ).stdout.strip()
    alice = _as(server, alice_token)
    assert "alice: token 'cli', manage on any project" in alice("whoami").stdout
    filed = json.loads(
        alice(
            "access",
            "request",
            "Demo",
            "--reason",
            "I maintain demo",
            "--repository",
            "https://github.com/alice/demo",
            "--json",
        ).stdout
    )
    assert filed["status"] == "pending" and filed["project"] == "demo"

    root = _as(server, root_token)
    listing = root("access", "list", "--all").stdout
    assert "demo" in listing and "alice" in listing and "Quansight" in listing
    root("access", "comment", str(filed["id"]), "Which workflow uploads?")
    alice("access", "comment", str(filed["id"]), "nightly.yml")
    shown = alice("access", "show", str(filed["id"])).stdout
    assert "root: Which workflow uploads?" in shown and "alice: nightly.yml" in shown
    # A refusal is one line on stderr and a non-zero exit.
    refused = alice("access", "approve", str(filed["id"]), check=False)
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == "error: only site admins may approve access requests; 'alice' is not one"
    )
    assert (
        "approved by root" in root("access", "approve", str(filed["id"]), "--reason", "ok").stdout
    )

    # Project admin work: members, with the two-representatives warning.
    show = alice("project", "show", "demo")
    assert "alice" in show.stdout and "admin" in show.stdout
    assert "at least 2 are recommended" in show.stderr
    local("user", "create", "bob", "--organisation", "Quansight")
    added = alice("project", "members", "add", "demo", "bob", "--role", "admin")
    assert "bob is admin of demo" in added.stdout
    assert "all admins of project 'demo' are from 'Quansight'" in added.stderr
    # bob hands his admin role back to alice's care: transfer leaves him an uploader.
    bob_token = local("token", "create", "--user", "bob", "--permission", "manage").stdout.strip()
    moved = _as(server, bob_token)("project", "members", "transfer", "demo", "alice")
    assert "alice is now admin of demo" in moved.stdout
    roles = json.loads(alice("project", "members", "list", "demo", "--json").stdout)["members"]
    assert {m["user"]: m["role"] for m in roles} == {"alice": "admin", "bob": "uploader"}
    last = alice("project", "members", "remove", "demo", "alice", check=False)
    assert last.returncode == 1 and "would have no admin left" in last.stderr

    # Tokens: personal, upload scope, shown once, with expiry warnings.
    created = alice("token", "create", "--project", "demo", "--expires", "5d", "--name", "ci")
    ci_token = created.stdout.strip()
    assert ci_token.startswith("nwt_") and "not shown again" in created.stderr
    listed = alice("token", "list")
    assert "ci" in listed.stdout and "demo" in listed.stdout
    assert "token 'ci' expires in 5 days" in listed.stderr
    wheel = make_wheel(tmp_path, "demo", "1.0.dev1")
    clients.twine_upload(server.upload_url, ci_token, wheel)
    prefix = ci_token.split("_")[1]
    rotated = alice("token", "rotate", prefix).stdout.strip()
    assert rotated.startswith("nwt_") and rotated != ci_token
    assert clients.twine_upload(server.upload_url, ci_token, wheel, check=False).returncode != 0
    alice("token", "revoke", rotated.split("_")[1])
    gone = json.loads(alice("token", "list", "--all", "--json").stdout)
    assert {t["prefix"]: t["status"] for t in gone}[prefix] == "revoked"

    # Audit: remote for the site admin, local on the server machine (no token).
    remote = json.loads(root("audit", "--json", "--project", "demo").stdout)
    actions = [e["action"] for e in remote["events"]]
    for action in ("access.request", "access.approve", "role.set", "token.rotate", "file.upload"):
        assert action in actions
    on_server = json.loads(local("audit", "--json", "--action", "access.").stdout)
    assert [e["action"] for e in on_server["events"]][:1] == ["access.approve"]
    table = local("audit", "--limit", "3").stdout.splitlines()
    assert table[0].split() == ["ID", "AT", "ACTOR", "ACTION", "PROJECT", "TARGET", "SOURCE"]
    assert len(table) == 4


def test_cli_errors_are_one_line(server: LiveServer) -> None:
    local = Cli(server, remote=False)
    nowhere = local("token", "create", "--project", "demo", check=False)
    assert nowhere.returncode == 2  # no server: a usage error, as in upload (issue 16.8)
    assert nowhere.stderr.startswith("error: give --server (or NIGHTWHEELS_SERVER)")
    no_token = _as(server, None)("token", "list", check=False)
    assert no_token.returncode == 2 and "set NIGHTWHEELS_TOKEN" in no_token.stderr
    bad = _as(server, "nwt_000000000000_x")("access", "list", check=False)
    assert bad.returncode == 1 and bad.stderr == "error: invalid token\n"
    unknown = local("token", "create", "--user", "ghost", "--project", "p", check=False)
    assert unknown.stderr == "error: no user named 'ghost'\n"
    short = local(
        "admin", "user", "create", "pat", "--password-stdin", input="short\n", check=False
    )
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    # Nothing half-done: the user with the refused password does not exist.
    assert "pat" not in local("admin", "user", "list").stdout
    dead = Cli(server, "nwt_000000000000_x")
    dead.env["NIGHTWHEELS_SERVER"] = f"http://127.0.0.1:{free_port()}"
    unreachable = dead("whoami", check=False)
    assert (
        unreachable.returncode == 1
        and "error: cannot reach http://127.0.0.1:" in unreachable.stderr
    )
    wrong = dead("token", "create", "--project", "p", "--server", "ftp://x", check=False)
    assert wrong.stderr == "error: 'ftp://x' is not an http(s) URL of a nightwheels server\n"
