"""Freshness notices as GitHub issues, through the REST client in ``github_issues``.

One issue per stale episode on the project's repository. The index finds its own issue
again by a hidden HTML comment (a marker) in the body among the issues its token's account
opened, so it never opens a duplicate, even when it lost its own record of the number.
``api_url`` points it at GitHub Enterprise, or at a loopback server in tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from nightwheels.core.freshness import Delivery, Notice
from nightwheels.trackers.github_issues import DEFAULT_API, GitHubIssues


def parse_repository(url: str | None) -> str | None:
    """``owner/name`` from a repository URL (``https://github.com/owner/name[.git]``)."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    if parsed.hostname not in ("github.com", "www.github.com"):
        return None
    parts = [p for p in parsed.path.split("/") if p]
    if len(parts) < 2:
        return None
    owner, name = parts[0], parts[1].removesuffix(".git")
    return f"{owner}/{name}" if owner and name else None


def marker(project: str) -> str:
    return f"<!-- nightwheels-freshness project={project} -->"


def _closed_at(issue: dict[str, Any]) -> datetime | None:
    value = issue.get("closed_at")
    return datetime.fromisoformat(value) if value else None


class GitHubIssueNotifier:
    """Opens, comments on and closes freshness issues; reads only, in dry-run mode."""

    name = "github"

    def __init__(
        self,
        token: str,
        api_url: str = DEFAULT_API,
        *,
        dry_run: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.token = token
        self.api_url = api_url
        self.dry_run = dry_run
        self.http = httpx.Client(timeout=30, transport=transport or httpx.HTTPTransport(retries=2))
        self._login: str | None = None

    def _issues(self, repo: str) -> GitHubIssues:
        return GitHubIssues(repo, self.token, self.api_url, client=self.http)

    def _find(self, github: GitHubIssues, notice: Notice) -> dict[str, Any] | None:
        if notice.ref:
            issue = github.get(notice.ref)
            if issue is not None:
                return issue
        if self._login is None:
            self._login = github.login()
        wanted = marker(notice.project)
        for issue in github.open_issues(creator=self._login):
            if wanted in (issue.get("body") or ""):
                return issue
        return None

    def deliver(self, notice: Notice) -> Delivery:
        repo = parse_repository(notice.repository_url)
        if repo is None:
            return Delivery("skipped", notice.ref, "the project has no GitHub repository URL")
        github = self._issues(repo)
        body = f"{notice.body()}\n\n{marker(notice.project)}"
        issue = self._find(github, notice)
        if notice.action == "resolved":
            if issue is None or issue["state"] != "open":
                return Delivery("skipped", notice.ref, "no open issue to close")
            number = issue["number"]
            if self.dry_run:
                return Delivery("dry-run", str(number), f"would close {repo}#{number}")
            github.comment(number, body)
            github.update(number, state="closed", state_reason="completed")
            return Delivery("sent", str(number), f"closed {repo}#{number}")
        if issue is not None and issue["state"] != "open":
            # Our issue of this episode was open; someone closed it: respect that.
            return Delivery(
                "closed-by-maintainer",
                str(issue["number"]),
                f"{repo}#{issue['number']} was closed by hand",
                _closed_at(issue),
            )
        if issue is not None:
            number = issue["number"]
            if self.dry_run:
                return Delivery("dry-run", str(number), f"would comment on {repo}#{number}")
            github.comment(number, body)
            return Delivery("sent", str(number), f"commented on {repo}#{number}")
        if self.dry_run:
            return Delivery("dry-run", None, f"would open an issue on {repo}: {notice.title}")
        created = github.create(notice.title, body)
        return Delivery("sent", str(created["number"]), f"opened {repo}#{created['number']}")
