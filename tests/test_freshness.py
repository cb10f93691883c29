"""Freshness: the notice state machine, and the real notifiers against loopback servers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete

from nightwheels.core.freshness import NoticeState, Thresholds, level_for, next_action
from nightwheels.db.models import FreshnessNotice, ProjectRole, User
from nightwheels.services import freshness, retention
from nightwheels.services.audit import SYSTEM
from nightwheels.services.context import Services
from nightwheels.trackers.email import EmailNotifier
from nightwheels.trackers.github import GitHubIssueNotifier, parse_repository
from nightwheels.trackers.webhook import SIGNATURE_HEADER, WebhookNotifier, sign
from tests.support.recorder import Recorder
from tests.support.seed import add_file, open_services, postgres_database

T0 = datetime(2026, 11, 1, tzinfo=UTC)
LIMITS = Thresholds(warn_days=15, final_days=25, cooldown_days=60)


def days(n: float) -> datetime:
    return T0 + timedelta(days=n)


# -- the pure rules ---------------------------------------------------------------------


def test_levels() -> None:
    assert level_for(T0, days(14.9), LIMITS) is None
    assert level_for(T0, days(15), LIMITS) == "warn"
    assert level_for(T0, days(25), LIMITS) == "final"
    assert level_for(T0, days(300), LIMITS) == "final"  # expired: still the final notice


def test_state_machine() -> None:
    fresh = NoticeState()
    assert next_action(fresh, T0, days(3), LIMITS) is None
    assert next_action(fresh, T0, days(16), LIMITS) == "warn"
    warned = NoticeState(episode=T0, level="warn", is_open=True)
    assert next_action(warned, T0, days(20), LIMITS) is None
    assert next_action(warned, T0, days(26), LIMITS) == "final"
    final = NoticeState(episode=T0, level="final", is_open=True)
    assert next_action(final, T0, days(90), LIMITS) is None
    # a new upload resolves an open notice, and only an open one
    assert next_action(final, days(40), days(41), LIMITS) == "resolved"
    assert next_action(NoticeState(episode=T0, level="final"), days(40), days(41), LIMITS) is None
    # a new stale episode starts over at "warn"
    assert next_action(NoticeState(episode=T0, level="final"), days(40), days(56), LIMITS) == "warn"
    # closed by a maintainer: quiet for the cooldown, whatever the episode
    closed = NoticeState(episode=T0, level="warn", suppressed_until=days(80))
    assert next_action(closed, T0, days(26), LIMITS) is None
    assert next_action(closed, days(50), days(66), LIMITS) is None
    assert next_action(closed, days(70), days(86), LIMITS) == "warn"


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/numpy/numpy", "numpy/numpy"),
        ("https://github.com/numpy/numpy.git", "numpy/numpy"),
        ("https://github.com/numpy/numpy/tree/main", "numpy/numpy"),
        ("https://gitlab.com/numpy/numpy", None),
        ("git@github.com:numpy/numpy.git", None),
        ("https://github.com/numpy", None),
        (None, None),
    ],
)
def test_parse_repository(url: str | None, repo: str | None) -> None:
    assert parse_repository(url) == repo


# -- the service with real notifiers ------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url, drop = postgres_database() if request.param == "postgresql" else (None, lambda: None)
    s = open_services(tmp_path / "data", database_url=url, retention_days=30)
    yield s
    s.close()
    drop()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as r:
        yield r


def github(recorder: Recorder, dry_run: bool = False) -> GitHubIssueNotifier:
    return GitHubIssueNotifier(recorder.github.token, recorder.url, dry_run=dry_run)


def _upload_at(services: Services, when: datetime, version: str) -> None:
    add_file(services, "demo", version, now=when)


def test_github_issue_lifecycle(services: Services, recorder: Recorder) -> None:
    _upload_at(services, T0, "1.0.dev1")
    retention.set_retention(
        services, SYSTEM, "demo", {}, repository_url="https://github.com/org/demo"
    )
    notifier = github(recorder)

    def run(when: datetime) -> list[tuple[str, str]]:
        out = freshness.notify(services, SYSTEM, [notifier], now=when)
        return [(o.action, o.delivery.outcome) for o in out]

    assert run(days(10)) == []
    assert run(days(16)) == [("warn", "sent")]
    (issue,) = recorder.github.issues["org/demo"]
    assert issue["title"] == "Nightly wheels of demo: no upload for 16 days"
    assert "<!-- nightwheels-freshness project=demo -->" in issue["body"]
    assert "2026-12-01" in issue["body"]  # removal date: last upload + 30 days
    assert run(days(17)) == []  # nothing new to say
    assert run(days(26)) == [("final", "sent")]
    assert recorder.github.comments[("org/demo", 1)][0].startswith("Final warning")
    assert len(recorder.github.issues["org/demo"]) == 1  # never a duplicate

    _upload_at(services, days(30), "1.0.dev2")
    assert run(days(30.5)) == [("resolved", "sent")]
    assert issue["state"] == "closed"
    assert "arrived" in recorder.github.comments[("org/demo", 1)][-1]
    assert run(days(31)) == []

    # Stale again: a new issue (the old one is closed), then a maintainer closes it.
    assert run(days(46)) == [("warn", "sent")]
    assert len(recorder.github.issues["org/demo"]) == 2
    recorder.github.close_by_hand("org/demo", 2, days(47))
    assert run(days(56)) == [("final", "closed-by-maintainer")]
    assert recorder.github.issues["org/demo"][1]["state"] == "closed"
    writes = len(recorder.writes())
    # Not raised again within 60 days of the closing, even for a new stale episode ...
    _upload_at(services, days(60), "1.0.dev3")
    assert run(days(80)) == []
    assert len(recorder.writes()) == writes
    # ... but after it (by now the episode is 48 days old: straight to the final warning).
    assert run(days(108)) == [("final", "sent")]
    assert len(recorder.github.issues["org/demo"]) == 3
    for request in recorder.requests:
        assert request.headers["authorization"] == "Bearer gh-test-token"
        assert request.headers["x-github-api-version"] == "2022-11-28"


def test_github_finds_its_issue_by_marker_when_state_is_lost(
    services: Services, recorder: Recorder
) -> None:
    _upload_at(services, T0, "1.0.dev1")
    retention.set_retention(
        services, SYSTEM, "demo", {}, repository_url="https://github.com/o/demo"
    )
    notifier = github(recorder)
    freshness.notify(services, SYSTEM, [notifier], now=days(16))
    # Someone else's issue mentioning nightwheels must not be taken for ours.
    recorder.github.issues["o/demo"].append(
        {
            "number": 2,
            "state": "open",
            "title": "x",
            "body": "<!-- nightwheels-freshness project=demo -->",
            "user": {"login": "someone"},
            "closed_at": None,
        }
    )

    def forget(session):  # type: ignore[no-untyped-def]
        session.execute(delete(FreshnessNotice))

    services.db.run_write(forget)
    out = freshness.notify(services, SYSTEM, [notifier], now=days(26))
    assert [(o.action, o.delivery.detail) for o in out] == [("final", "commented on o/demo#1")]
    assert len(recorder.github.issues["o/demo"]) == 2
    lists = [r for r in recorder.requests if r.path == "/repos/o/demo/issues" and r.method == "GET"]
    assert lists[-1].query["creator"] == ["nightwheels-bot"]


def test_dry_run_reads_but_never_writes(services: Services, recorder: Recorder) -> None:
    _upload_at(services, T0, "1.0.dev1")
    retention.set_retention(
        services, SYSTEM, "demo", {}, repository_url="https://github.com/o/demo"
    )
    hook = WebhookNotifier(recorder.url + "/hook", dry_run=True)
    for _ in range(2):  # state is not changed: the same notices are due again
        out = freshness.notify(
            services, SYSTEM, [github(recorder, dry_run=True), hook], now=days(16)
        )
        assert [(o.notifier, o.delivery.outcome) for o in out] == [
            ("github", "dry-run"),
            ("webhook", "dry-run"),
        ]
        assert "would open an issue on o/demo" in out[0].delivery.detail
    assert recorder.writes() == []


def test_github_without_repository_or_token(services: Services, recorder: Recorder) -> None:
    _upload_at(services, T0, "1.0.dev1")
    out = freshness.notify(services, SYSTEM, [github(recorder)], now=days(16))
    assert [(o.delivery.outcome, o.delivery.detail) for o in out] == [
        ("skipped", "the project has no GitHub repository URL")
    ]
    # A bad token: the failure is reported and the notice stays due.
    retention.set_retention(
        services, SYSTEM, "demo", {}, repository_url="https://github.com/o/demo"
    )
    bad = GitHubIssueNotifier("wrong", recorder.url)
    out = freshness.notify(services, SYSTEM, [bad], now=days(26))
    assert out[0].delivery.outcome == "failed" and "401" in out[0].delivery.detail


def test_webhook_signed_and_retried_after_failure(services: Services, recorder: Recorder) -> None:
    _upload_at(services, T0, "1.0.dev1")
    add_file(services, "other", "1.0", now=T0)
    retention.set_retention(services, SYSTEM, "other", {"retention_exempt": True})
    hook = WebhookNotifier(recorder.url + "/hook", secret="s3cret")
    recorder.hook_status = 500
    out = freshness.notify(services, SYSTEM, [hook], now=days(16))
    assert [o.delivery.outcome for o in out] == ["failed"]  # exempt "other" gets none
    recorder.hook_status = 204
    out = freshness.notify(services, SYSTEM, [hook], now=days(16))
    assert [o.delivery.outcome for o in out] == ["sent"]
    assert freshness.notify(services, SYSTEM, [hook], now=days(17)) == []
    last = recorder.requests[-1]
    assert last.headers[SIGNATURE_HEADER.lower()] == sign("s3cret", last.body)
    doc = last.json()
    assert doc["event"] == "nightwheels.freshness" and doc["action"] == "warn"
    assert doc["project"] == "demo" and doc["age_days"] == 16


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.send_message."""

    def handle(self) -> None:
        self.wfile.write(b"220 loopback ESMTP\r\n")
        data = False
        lines: list[bytes] = []
        while line := self.rfile.readline():
            if data:
                if line == b".\r\n":
                    data = False
                    self.server.messages.append(b"".join(lines))  # type: ignore[attr-defined]
                    self.wfile.write(b"250 queued\r\n")
                else:
                    lines.append(line)
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 loopback\r\n")
            elif verb == b"DATA":
                data, lines = True, []
                self.wfile.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                self.server.envelope.append(line.strip())  # type: ignore[attr-defined]
                self.wfile.write(b"250 ok\r\n")


def test_email_to_project_members(services: Services) -> None:
    _upload_at(services, T0, "1.0.dev1")

    def members(session):  # type: ignore[no-untyped-def]
        from nightwheels.db.models import Project

        project = session.query(Project).one()
        for name, email in (("alice", "alice@example.org"), ("bob", None)):
            user = User(name=name, email=email)
            session.add(user)
            session.flush()
            session.add(ProjectRole(user_id=user.id, project_id=project.id, role="uploader"))

    services.db.run_write(members)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages, server.envelope = [], []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    try:
        mail = EmailNotifier("127.0.0.1", server.server_address[1], sender="index@example.org")
        out = freshness.notify(services, SYSTEM, [mail], now=days(26))
        assert [(o.action, o.delivery.outcome) for o in out] == [("final", "sent")]
    finally:
        server.shutdown()
        server.server_close()
    (message,) = server.messages  # type: ignore[attr-defined]
    assert b"Subject: Nightly wheels of demo: no upload for 26 days" in message
    assert b"To: alice@example.org" in message
    assert b"rcpt TO:<alice@example.org>" in server.envelope  # type: ignore[attr-defined]


def test_freshness_listing(services: Services) -> None:
    _upload_at(services, T0, "1.0.dev1")
    add_file(services, "recent", "1.0", now=days(19))
    with services.db.read() as session:
        rows = {f.project: f for f in freshness.freshness(session, services.settings, days(20))}
    assert rows["demo"].level == "warn" and rows["demo"].age_days == 20
    assert rows["recent"].level is None and rows["recent"].last_upload == days(19)
    assert json.dumps(rows["demo"].last_upload.isoformat())


def test_a_late_final_notice_names_its_removal_date_as_past() -> None:
    """Issue 19.9: a final notice for a project already past its removal date said
    "On <a date in the past>, retention removes ..."."""
    from nightwheels.core.freshness import Notice

    last = datetime(2026, 10, 1, tzinfo=UTC)
    late = Notice("demo", "final", last, 40, removal_at=last + timedelta(days=30))
    assert "On 2026-10-31" not in late.body()
    assert "Since 2026-10-31, retention removes every version but the newest" in late.body()
    due = Notice("demo", "final", last, 26, removal_at=last + timedelta(days=30))
    assert "On 2026-10-31, retention removes every version but the newest" in due.body()


def test_notices_without_a_base_url_are_announced(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """Issue 19.9: index_url is null unless NIGHTWHEELS_BASE_URL is set: the server says so
    when it starts its schedule."""
    import logging

    from nightwheels.config import Settings
    from nightwheels.server.maintenance import Scheduler

    settings = Settings(data=tmp_path, notify_webhook_url="http://127.0.0.1:9/hook")
    scheduler = Scheduler(settings, 3600)
    with caplog.at_level(logging.WARNING):
        scheduler.start()
        scheduler.stop()
    assert "set NIGHTWHEELS_BASE_URL" in caplog.text
    caplog.clear()
    quiet = Scheduler(settings.model_copy(update={"base_url": "https://n.example/"}), 3600)
    with caplog.at_level(logging.WARNING):
        quiet.start()
        quiet.stop()
    assert "NIGHTWHEELS_BASE_URL" not in caplog.text
