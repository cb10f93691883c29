"""The early warning (issue 20): the matrix, per-build verdicts, known-bad builds, upstream
alerts, badges, the feed and latest URLs.

A live server; results are posted with the real ``nightwheels report --server`` (in
process, through typer's runner, as test_nightly_testing does); alerts are received by a
loopback webhook and the fake GitHub API; ``nightwheels alerts run`` runs as a process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.github_api import FakeGitHub
from tests.support.server import LiveServer, free_port
from tests.support.uploads import post_wheel
from tests.support.wheels import make_wheel

SECRET = "webhook-secret"


@dataclass
class Hook:
    """A loopback webhook that records (headers, body) of every POST."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Hook:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        out = []
        for headers, body in self.received:
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            assert headers["x-nightwheels-signature-256"] == expected
            out.append(json.loads(body))
        return out


@dataclass
class World:
    server: LiveServer
    files: dict[str, dict[str, str]]  # label -> {filename, sha256, version}
    admin_token: str  # upa's admin, manage
    report_token: str  # ci, member of downa and downb
    outsider_token: str  # a manage token of a member of downa only
    tmp: Path


def _manage_token(server: LiveServer, user: str, *projects: str) -> str:
    from nightwheels.services import accounts
    from nightwheels.services.audit import SYSTEM

    def create(session):  # type: ignore[no-untyped-def]
        return accounts.create_token_as_admin(
            session, SYSTEM, accounts.get_user(session, user), name="m",
            projects=list(projects) or None, permission="manage",
        ).secret  # fmt: skip

    return server.admin(create)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("early")
    with LiveServer(data=tmp / "data") as server:
        server.create_user("root", admin=True)
        upload = server.token("root", "upa", "upb", "downa", "downb")
        files: dict[str, dict[str, str]] = {}
        for label, project, version in (
            ("a1", "upa", "1.0.dev1"),
            ("a2", "upa", "1.0.dev2"),
            ("b1", "upb", "2.0.dev1"),
            ("da", "downa", "0.1"),
            ("db", "downb", "0.1"),
        ):
            wheel = make_wheel(tmp / label, project, version)
            answer = post_wheel(server, upload, wheel, json=True)
            assert answer.status_code == 200, answer.text
            files[label] = {
                "filename": wheel.name,
                "sha256": answer.json()["sha256"],
                "version": version,
            }
        for user in ("upadmin", "ci", "mallory"):
            server.create_user(user)
        for args in (
            ("member", "set", "upa", "upadmin", "--role", "admin"),
            ("member", "set", "downa", "ci", "--role", "uploader"),
            ("member", "set", "downb", "ci", "--role", "uploader"),
            ("member", "set", "downa", "mallory", "--role", "admin"),
        ):
            server.cli("admin", *args)
        for downstream in ("downa", "downb"):  # links shown are the downstream's own
            server.cli(
                "retention",
                "set",
                downstream,
                "--repository",
                f"https://github.com/sci/{downstream}",
            )
        report_token = server.cli(
            "token", "create", "--user", "ci", "--permission", "report",
            "--project", "downa", "--project", "downb",
        ).stdout.strip()  # fmt: skip
        yield World(
            server=server,
            files=files,
            admin_token=_manage_token(server, "upadmin", "upa"),
            report_token=report_token,
            outsider_token=_manage_token(server, "mallory"),
            tmp=tmp,
        )


def nightly(world: World, label: str, name: str) -> dict[str, Any]:
    f = world.files[label]
    return {
        "name": name, "version": f["version"], "filename": f["filename"],
        "url": f"{world.server.url}/files/{f['sha256'][:32]}/{f['filename']}",
        "sha256": f["sha256"],
    }  # fmt: skip


def report(
    world: World,
    downstream: str,
    outcome: str,
    nightlies: list[dict[str, Any]],
    *,
    culprit: str | None = None,
    first_bad: dict[str, Any] | None = None,
    failures: tuple[str, ...] = (),
    python: str = "3.12.1",
    days_ago: float = 0,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Any:
    """Write a report file and post it with ``nightwheels report --server``."""
    from tests.test_nightly_testing import report_cli

    data: dict[str, Any] = {
        "schema": "nightwheels-test-report/1",
        "project": downstream,
        "created_at": (datetime.now(UTC) - timedelta(days=days_ago)).isoformat(),
        "outcome": outcome,
        "exit_code": {"passed": 0, "failed": 1}.get(outcome, 3),
        "index_url": world.server.simple_url,
        "stable_index_url": "https://pypi.org/simple/",
        "python": python,
        "platform": "linux-x86_64",
        "nightlies": nightlies,
        "failures": [{"nodeid": f, "when": "call", "message": "boom"} for f in failures],
        "run_url": f"https://github.com/sci/{downstream}/actions/runs/1",
    }
    if culprit:
        data["bisect"] = {
            "culprits": [culprit],
            "builds": [{"name": culprit, "first_bad": first_bad}] if first_bad else [],
        }
    path = world.tmp / f"report-{downstream}-{len(list(world.tmp.glob('report-*')))}.json"
    path.write_text(json.dumps(data))
    result = report_cli(
        str(path), "--server", world.server.url, "--repository", f"https://github.com/sci/{downstream}",
        *args, NIGHTWHEELS_TOKEN=world.report_token, **(env or {}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def api(world: World, path: str, **params: str) -> Any:
    answer = httpx.get(f"{world.server.url}/api/v1{path}", params=params, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def cells(world: World, **params: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (c["upstream"], c["downstream"]): c for c in api(world, "/compat/matrix", **params)["cells"]
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def reported(world: World) -> World:
    a2, b1 = nightly(world, "a2", "upa"), nightly(world, "b1", "upb")
    report(
        world, "downa", "failed", [a2, b1], culprit="upa",
        first_bad={k: a2[k] for k in ("version", "filename", "url", "sha256")},
        failures=("tests/test_x.py::test_sum",),
    )  # fmt: skip
    report(world, "downb", "passed", [a2, b1])
    report(
        world, "downb", "install-error", [nightly(world, "a1", "upa")], python="3.11.9", days_ago=1
    )
    return world


def test_the_matrix_names_the_culprit_and_the_others(reported: World) -> None:
    matrix = api(reported, "/compat/matrix")
    assert matrix["upstreams"] == ["upa", "upb"]
    assert matrix["downstreams"] == ["downa", "downb"]
    found = cells(reported)
    culprit = found[("upa", "downa")]
    assert culprit["verdict"] == "culprit"
    assert culprit["first_bad"] == reported.files["a2"]["filename"]
    assert culprit["run_url"] == "https://github.com/sci/downa/actions/runs/1"
    assert found[("upb", "downa")]["verdict"] == "failed-other"
    assert found[("upa", "downb")]["verdict"] == "could-not-run"  # its latest: install error
    assert found[("upb", "downb")]["verdict"] == "passed"
    # Filters: Python by prefix, platform by part.
    py312 = cells(reported, python="3.12")
    assert py312[("upa", "downb")]["verdict"] == "passed"
    assert cells(reported, platform="win") == {}


def test_a_downstream_silent_for_8_days_is_stale(world: World) -> None:
    report(world, "downb", "passed", [nightly(world, "b1", "upb")], python="2.7", days_ago=9)
    assert cells(world, python="2.7")[("upb", "downb")]["verdict"] == "stale"


def test_per_build_verdicts(reported: World) -> None:
    builds = {b["version"]: b for b in api(reported, "/projects/upa/builds")}
    tonight = builds["1.0.dev2"]
    assert (tonight["tested_by"], tonight["passed"], tonight["failed"], tonight["culprit"]) == (
        2,
        1,
        1,
        1,
    )
    assert tonight["named_first_bad_by"] == ["downa"]
    assert builds["1.0.dev1"]["could_not_run"] == 1
    page = httpx.get(f"{reported.server.url}/project/upa/").text
    assert "2 downstreams tested, 1 passed, 1 failed, culprit upa in 1" in page
    assert "first bad build" in page


def test_known_bad_builds_and_who_may_mark_them(reported: World) -> None:
    url = f"{reported.server.url}/api/v1/projects/upa/known-bad"
    body = {
        "version": "1.0.dev2",
        "reason": "off-by-one in sum()",
        "link": "https://github.com/up/upa/pull/7",
    }
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers=bearer(reported.outsider_token)).status_code == 403
    assert httpx.post(url, json=body, headers=bearer(reported.report_token)).status_code == 403
    bad_link = httpx.post(
        url, json={**body, "link": "javascript:alert(1)"}, headers=bearer(reported.admin_token)
    )
    assert bad_link.status_code == 400
    marked = httpx.post(url, json=body, headers=bearer(reported.admin_token))
    assert marked.status_code == 201, marked.text
    assert [m["filename"] for m in marked.json()] == [reported.files["a2"]["filename"]]

    culprit = cells(reported)[("upa", "downa")]
    assert culprit["known_bad"] == "off-by-one in sum()"
    assert culprit["known_bad_link"] == "https://github.com/up/upa/pull/7"
    assert httpx.get(url).json()[0]["reason"] == "off-by-one in sum()"
    # Still installable: more than a yank.
    assert reported.files["a2"]["filename"] in httpx.get(f"{reported.server.url}/simple/upa/").text
    removed = httpx.post(
        url + "/remove", json={"version": "1.0.dev2"}, headers=bearer(reported.admin_token)
    )
    assert removed.status_code == 200 and cells(reported)[("upa", "downa")]["known_bad"] is None


def test_badges_feed_and_latest(reported: World) -> None:
    base = reported.server.url
    nightly_badge = httpx.get(f"{base}/badge/upa/nightly.svg")
    assert nightly_badge.headers["content-type"] == "image/svg+xml"
    assert "nightly: today" in nightly_badge.text
    ET.fromstring(nightly_badge.text)  # well-formed
    assert "tests vs nightlies: failing" in httpx.get(f"{base}/badge/downa/tests.svg").text
    assert httpx.get(f"{base}/badge/nosuch/nightly.svg").status_code == 404

    feed = ET.fromstring(httpx.get(f"{base}/project/upa/feed.atom").content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    titles = [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)]
    assert "downa fails with upa 1.0.dev2" in titles

    latest = httpx.get(f"{base}/latest/upa/py3-none-any")
    assert latest.status_code == 302
    assert latest.headers["location"].endswith(reported.files["a2"]["filename"])
    assert httpx.get(latest.headers["location"]).status_code == 200
    assert httpx.get(f"{base}/latest/upa/cp399-cp399-win_amd64").status_code == 404


def test_the_tracking_issue_names_a_known_upstream_regression(reported: World) -> None:
    """Issue 20.4: the downstream's tracking issue (and --markdown) says "known upstream
    regression: <link>" when the culprit's first bad build is marked known bad on the index."""
    from nightwheels.nightly_testing.known_bad import server_of
    from tests.test_nightly_testing import report_cli

    base = reported.server.url
    assert server_of(f"{base}/simple/") == base
    assert server_of(f"{base}/label/rc/simple/") == base
    assert server_of(f"{base}/as-of/2026-11-01T00:00:00Z/simple") == base
    assert server_of("https://pypi.org/pypi/") is None

    fix = "https://github.com/up/upa/pull/9"
    marks = f"{base}/api/v1/projects/upa/known-bad"
    marked = httpx.post(
        marks,
        json={"version": "1.0.dev2", "reason": "sum() is off by one", "link": fix},
        headers=bearer(reported.admin_token),
    )
    assert marked.status_code == 201, marked.text
    github = FakeGitHub().start()
    github.issues["sci/downa"] = []
    try:
        a2 = nightly(reported, "a2", "upa")
        first_bad = {k: a2[k] for k in ("version", "filename", "url", "sha256")}
        result = report(
            reported, "downa", "failed", [a2], culprit="upa", first_bad=first_bad,
            failures=("tests/test_k.py::test_known",), args=("--github", "sci/downa"),
            env={"GITHUB_TOKEN": github.token, "GITHUB_API_URL": github.url},
        )  # fmt: skip
        assert "known upstream regression: upa 1.0.dev2" in result.stdout
        [issue] = github.issues["sci/downa"]
        assert f"known upstream regression: <{fix}>" in issue["body"]
        assert "sum() is off by one" in issue["body"]

        # Without --server: the server is the report's nightly index.
        saved = max(reported.tmp.glob("report-downa-*.json"), key=lambda p: p.stat().st_mtime)
        md = reported.tmp / "known.md"
        assert report_cli(str(saved), "--markdown", str(md)).returncode == 0
        assert f"known upstream regression: <{fix}>" in md.read_text()

        # An index that is not a nightwheels server (nothing listens): nothing added.
        data = json.loads(saved.read_text())
        data["index_url"] = f"http://127.0.0.1:{free_port()}/simple/"
        saved.write_text(json.dumps(data))
        assert report_cli(str(saved), "--markdown", str(md)).returncode == 0
        assert "known upstream regression" not in md.read_text()
    finally:
        github.stop()
        httpx.post(marks + "/remove", json={"version": "1.0.dev2"},
                   headers=bearer(reported.admin_token))  # fmt: skip


def mine(hook: Hook) -> list[dict[str, Any]]:
    return [e for e in hook.events() if e["failures"] == ["tests/test_y.py::test_z"]]


def alerts_run(world: World, github: FakeGitHub, *extra: str, private: bool = True) -> Any:
    """``nightwheels alerts run``, in process (the entry point is not what is under test)."""
    from typer.testing import CliRunner

    from nightwheels.cli.app import app
    from tests.test_nightly_testing import CliResult

    env = {
        "NIGHTWHEELS_DATA": str(world.server.data),
        "NIGHTWHEELS_GITHUB_API_URL": github.url,
        # The loopback webhook is a private address, refused unless the operator allows it.
        "NIGHTWHEELS_ALERT_WEBHOOKS_ALLOW_PRIVATE": "true" if private else "false",
    }
    result = CliRunner().invoke(app, ["alerts", "run", *extra], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def test_upstream_alerts_one_per_build_downstream_and_failure_set(world: World) -> None:
    hook = Hook().start()
    github = FakeGitHub().start()
    github.issues["up/upa"] = []  # the upstream's own repository
    try:
        url = f"{world.server.url}/api/v1/projects/upa/alert-channels"
        refused = httpx.post(
            url, json={"kind": "webhook", "target": hook.url}, headers=bearer(world.outsider_token)
        )
        assert refused.status_code == 403
        for channel in (
            {"kind": "webhook", "target": hook.url, "secret": SECRET},
            {"kind": "github", "target": "up/upa", "secret": github.token},
        ):
            added = httpx.post(url, json=channel, headers=bearer(world.admin_token))
            assert added.status_code == 201, added.text
            assert "secret" not in added.json() and added.json()["has_secret"] is True

        a2 = nightly(world, "a2", "upa")
        first_bad = {k: a2[k] for k in ("version", "filename", "url", "sha256")}
        failing = dict(culprit="upa", first_bad=first_bad, failures=("tests/test_y.py::test_z",))
        report(world, "downa", "failed", [a2], **failing)  # type: ignore[arg-type]

        dry = alerts_run(world, github, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "dry run: not sent" in dry.stdout and hook.received == []

        # A project admin's webhook may not reach the server's own network by default.
        refused = alerts_run(world, github, private=False)
        assert refused.returncode == 1
        assert "127.0.0.1, which is not a public address" in refused.stderr
        assert hook.received == []

        first = alerts_run(world, github)
        assert first.returncode == 0, first.stderr
        opened = mine(hook)
        assert [e["action"] for e in opened] == ["opened"]
        assert opened[0]["downstream"] == "downa"
        assert opened[0]["build"]["sha256"] == a2["sha256"]
        issues = [i for i in github.issues["up/upa"] if "test_z" in i["body"]]
        assert len(issues) == 1 and "downa" in issues[0]["title"] and issues[0]["state"] == "open"
        sent, filed = len(hook.received), len(github.issues["up/upa"])

        assert alerts_run(world, github).returncode == 0  # nothing new: nothing sent
        assert (len(hook.received), len(github.issues["up/upa"])) == (sent, filed)

        report(world, "downa", "failed", [a2], **failing)  # type: ignore[arg-type]  # same failures
        assert alerts_run(world, github).returncode == 0
        assert [(e["action"], e["runs"]) for e in mine(hook)] == [("opened", 1), ("updated", 2)]
        assert len(github.issues["up/upa"]) == filed  # updated, not a second issue
        assert "Seen in 2 runs" in issues[0]["body"]

        # The downstream passes with a newer build: resolved, the issue closed.
        newer = make_wheel(world.tmp / "a3", "upa", "1.0.dev3")
        upload = world.server.token("root", "upa")
        answer = post_wheel(world.server, upload, newer, json=True)
        world.files["a3"] = {
            "filename": newer.name,
            "sha256": answer.json()["sha256"],
            "version": "1.0.dev3",
        }
        report(world, "downa", "passed", [nightly(world, "a3", "upa")])
        assert alerts_run(world, github).returncode == 0
        assert mine(hook)[-1]["action"] == "resolved"
        assert issues[0]["state"] == "closed"

        alerts = httpx.get(f"{world.server.url}/api/v1/projects/upa/alerts").json()
        ours = [a for a in alerts if a["failures"] == ["tests/test_y.py::test_z"]]
        assert [(a["state"], a["runs"]) for a in ours] == [("resolved", 2)]
        from sqlalchemy import select

        from nightwheels.db.models import AuditEvent

        actions = world.server.admin(
            lambda s: list(
                s.execute(select(AuditEvent.action).where(AuditEvent.project == "upa")).scalars()
            )
        )
        assert actions.count("alert.deliver") >= 6  # dry run (2), opened (2), updated (2), ...
        assert "alert.channel.add" in actions
    finally:
        github.stop()
        assert hook.server is not None
        hook.server.shutdown()


def cli(world: World, *args: str, token: str, stdin: str | None = None) -> Any:
    """A remote ``nightwheels project ...`` command, in process, through client/api.py."""
    from typer.testing import CliRunner

    from nightwheels.cli.app import app
    from tests.test_nightly_testing import CliResult

    env = {"NIGHTWHEELS_TOKEN": token, "NIGHTWHEELS_SERVER": world.server.url}
    result = CliRunner().invoke(app, ["project", *args], env=env, input=stdin)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def test_cli_known_bad_and_alert_channels(world: World) -> None:
    admin, outsider = world.admin_token, world.outsider_token
    fix = "https://github.com/up/upa/pull/11"
    mark = ("known-bad", "upa", "--version", "1.0.dev1", "--reason", "leaks fds", "--link", fix)
    refused = cli(world, *mark, token=outsider)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1, refused.stderr
    assert "error:" in refused.stderr
    assert cli(world, "known-bad", "upa", "--version", "1.0.dev1", token=admin).returncode == 2
    marked = cli(world, *mark, token=admin)
    assert marked.returncode == 0, marked.stderr
    assert "leaks fds" in marked.stdout and world.files["a1"]["filename"] in marked.stdout
    listed = cli(world, "known-bad", "upa", "--json", token="")  # public
    assert [m["link"] for m in json.loads(listed.stdout)] == [fix]
    removed = cli(world, "known-bad", "upa", "--version", "1.0.dev1", "--remove", token=admin)
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert "no known-bad builds" in cli(world, "known-bad", "upa", token="").stdout

    add = ("alerts", "add", "upa", "--webhook", "https://hooks.example.org/x", "--digest")
    assert cli(world, *add, token=outsider).returncode != 0
    both = cli(world, *add, "--email", "up@example.org", token=admin)
    assert both.returncode == 2 and "exactly one" in both.stderr
    no_token = cli(world, "alerts", "add", "upa", "--github", "up/upa", token=admin)
    assert no_token.returncode == 2 and "--secret-stdin" in no_token.stderr
    added = cli(world, *add, "--secret-stdin", token=admin, stdin="s3cret\n")
    assert added.returncode == 0, added.stderr
    assert "daily digest, signed" in added.stdout and "s3cret" not in added.stdout
    channel = added.stdout.split("#", 1)[1].split(":", 1)[0]
    rows = json.loads(cli(world, "alerts", "list", "upa", "--json", token=admin).stdout)
    ours = [c for c in rows if str(c["id"]) == channel]
    assert ours and ours[0]["has_secret"] and ours[0]["digest"]
    gone = cli(world, "alerts", "remove", "upa", channel, token=admin)
    assert gone.returncode == 0, gone.stderr
    rows = json.loads(cli(world, "alerts", "list", "upa", "--json", token=admin).stdout)
    assert all(str(c["id"]) != channel for c in rows)


def test_an_alert_round_reads_each_upstreams_alerts_once(tmp_path: Path) -> None:
    """Delivery reads an upstream's alerts and their known-bad marks once per round, not once
    per channel (a project may have up to ten); every channel is still told (dry run)."""
    from sqlalchemy import event

    from nightwheels.db.models import AlertChannel, Project, UpstreamAlert
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.upstream_alerts import run_alerts
    from tests.support.seed import open_services

    services = open_services(tmp_path / "data")
    try:
        with services.db.write() as session:
            for name in ("upa", "upb"):
                project = Project(name=name, display_name=name)
                session.add(project)
                session.flush()
                for i in range(3):
                    session.add(
                        AlertChannel(
                            project_id=project.id, kind="webhook", created_by="root",
                            target=f"https://hooks.example.org/{name}/{i}",
                        )
                    )  # fmt: skip
                session.add(
                    UpstreamAlert(
                        upstream=name, build_sha256="ab" * 32, build_filename=f"{name}.whl",
                        build_version="1.0.dev1", downstream="downa", failures_key="k",
                        failures=["tests/test_x.py::test_y"],
                    )
                )  # fmt: skip
        statements: list[str] = []

        def record(*args: Any, **kwargs: Any) -> None:
            statements.append(args[2])

        engines = {services.db.read_engine, services.db.write_engine}
        for engine in engines:
            event.listen(engine, "before_cursor_execute", record)
        try:
            result = run_alerts(services, SYSTEM, {}, dry_run=True)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", record)
        assert len(result.deliveries) == 6 and not result.errors  # 2 upstreams x 3 channels
        per_upstream = [s for s in statements if "WHERE upstream_alerts.upstream = " in s]
        marks = [s for s in statements if "FROM known_bad" in s]
        assert (len(per_upstream), len(marks)) == (2, 2), statements
    finally:
        services.close()
