"""GitHub issues through the REST API: a small client, and the freshness notifier on top.

The client finds its own issue again by a hidden HTML comment (a marker) in the body, so it
never opens a duplicate, even when the index lost its own record of the issue number.
``api_url`` points it at GitHub Enterprise, or at a loopback server in tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import httpx

from nightwheels import __version__
from nightwheels.core.freshness import Delivery, Notice

API_VERSION = "2022-11-28"
MAX_PAGES = 10


class GitHubError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"GitHub API answered {status}: {message}")
        self.status = status


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


class GitHubClient:
    def __init__(
        self,
        token: str | None,
        api_url: str = "https://api.github.com",
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": f"nightwheels/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=api_url.rstrip("/"), headers=headers, timeout=timeout, transport=transport
        )
        self._login: str | bool | None = False  # False: not looked up yet

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise GitHubError(response.status_code, str(message)[:500])
        return response.json() if response.content else None

    def login(self) -> str | None:
        """The account the token acts as (``None`` for tokens that have no user)."""
        if self._login is False:
            try:
                self._login = self._call("GET", "/user").get("login")
            except GitHubError:
                self._login = None
        return self._login  # type: ignore[return-value]

    def get_issue(self, repo: str, number: int | str) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"/repos/{repo}/issues/{number}")  # type: ignore[no-any-return]
        except GitHubError as exc:
            if exc.status in (404, 410):
                return None
            raise

    def find_issue(self, repo: str, marker: str, state: str = "open") -> dict[str, Any] | None:
        """The newest issue (not pull request) whose body holds ``marker``, by this account."""
        params: dict[str, Any] = {"state": state, "per_page": 100, "sort": "created"}
        login = self.login()
        if login:
            params["creator"] = login
        for page in range(1, MAX_PAGES + 1):
            issues = self._call("GET", f"/repos/{repo}/issues", params={**params, "page": page})
            for issue in issues:
                if "pull_request" not in issue and marker in (issue.get("body") or ""):
                    return issue  # type: ignore[no-any-return]
            if len(issues) < params["per_page"]:
                return None
        return None

    def create_issue(self, repo: str, title: str, body: str) -> dict[str, Any]:
        return self._call("POST", f"/repos/{repo}/issues", json={"title": title, "body": body})  # type: ignore[no-any-return]

    def comment(self, repo: str, number: int | str, body: str) -> dict[str, Any]:
        return self._call("POST", f"/repos/{repo}/issues/{number}/comments", json={"body": body})  # type: ignore[no-any-return]

    def close_issue(self, repo: str, number: int | str) -> dict[str, Any]:
        return self._call(  # type: ignore[no-any-return]
            "PATCH",
            f"/repos/{repo}/issues/{number}",
            json={"state": "closed", "state_reason": "completed"},
        )


def marker(project: str) -> str:
    return f"<!-- nightwheels-freshness project={project} -->"


def _closed_at(issue: dict[str, Any]) -> datetime | None:
    value = issue.get("closed_at")
    return datetime.fromisoformat(value) if value else None


class GitHubIssueNotifier:
    """Freshness notices as one issue per stale episode on the project's repository."""

    name = "github"

    def __init__(self, client: GitHubClient, *, dry_run: bool = False) -> None:
        self.client = client
        self.dry_run = dry_run

    def _find(self, repo: str, notice: Notice) -> dict[str, Any] | None:
        if notice.ref:
            issue = self.client.get_issue(repo, notice.ref)
            if issue is not None:
                return issue
        return self.client.find_issue(repo, marker(notice.project))

    def deliver(self, notice: Notice) -> Delivery:
        repo = parse_repository(notice.repository_url)
        if repo is None:
            return Delivery("skipped", notice.ref, "the project has no GitHub repository URL")
        body = f"{notice.body()}\n\n{marker(notice.project)}"
        issue = self._find(repo, notice)
        if notice.action == "resolved":
            if issue is None or issue["state"] != "open":
                return Delivery("skipped", notice.ref, "no open issue to close")
            number = issue["number"]
            if self.dry_run:
                return Delivery("dry-run", str(number), f"would close {repo}#{number}")
            self.client.comment(repo, number, body)
            self.client.close_issue(repo, number)
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
            self.client.comment(repo, number, body)
            return Delivery("sent", str(number), f"commented on {repo}#{number}")
        if self.dry_run:
            return Delivery("dry-run", None, f"would open an issue on {repo}: {notice.title}")
        created = self.client.create_issue(repo, notice.title, body)
        return Delivery("sent", str(created["number"]), f"opened {repo}#{created['number']}")
