"""A small client for the GitHub REST issues endpoints that a tracking issue needs.

``GET /user``, ``GET /repos/{repo}/issues``, ``POST /repos/{repo}/issues``,
``PATCH /repos/{repo}/issues/{n}`` and ``POST /repos/{repo}/issues/{n}/comments``.
The API root comes from ``GITHUB_API_URL`` (set by GitHub Actions, and by GitHub
Enterprise), so the same code runs against any compatible server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx

from nightwheels import __version__
from nightwheels.errors import ProjectConfigError, TrackerError

DEFAULT_API = "https://api.github.com"
# The author of issues opened with the GITHUB_TOKEN of a workflow; that token cannot
# read GET /user.
ACTIONS_BOT = "github-actions[bot]"
_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubIssues:
    def __init__(
        self,
        repo: str,
        token: str,
        api_url: str | None = None,
        client: httpx.Client | None = None,
        max_pages: int = 30,
    ) -> None:
        if not _REPO.match(repo):
            raise ProjectConfigError(f"{repo!r} is not a GitHub repository: use OWNER/NAME")
        if not token:
            raise ProjectConfigError("no GitHub token: set GITHUB_TOKEN")
        self.repo = repo
        self.api = (api_url or DEFAULT_API).rstrip("/")
        self.max_pages = max_pages
        self.client = client or httpx.Client(timeout=30, transport=httpx.HTTPTransport(retries=2))
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"nightwheels/{__version__}",
        }

    def _request(
        self, method: str, path_or_url: str, allow: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        url = path_or_url if path_or_url.startswith("http") else self.api + path_or_url
        try:
            response = self.client.request(method, url, headers=self.headers, **kwargs)
        except httpx.HTTPError as exc:
            raise TrackerError(f"cannot reach {self.api}: {exc}") from None
        if response.status_code >= 400 and response.status_code not in allow:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = response.text[:200]
            hint = {
                401: "the token is not valid",
                403: "the token may not do this (does the workflow have 'issues: write'?)",
                404: f"no repository {self.repo!r}, or the token cannot see it",
                410: "issues are disabled on this repository",
                422: "GitHub refused the content",
            }.get(response.status_code, "")
            raise TrackerError(
                f"GitHub answered {response.status_code} to {method} {url}: {message}"
                + (f" ({hint})" if hint else "")
            )
        return response

    def login(self) -> str:
        """The login the token acts as; the Actions bot when the token cannot say."""
        response = self._request("GET", "/user", allow=(403,))
        if response.status_code == 403:
            return ACTIONS_BOT
        return str(response.json()["login"])

    def open_issues(self, *, creator: str | None = None) -> Iterator[dict[str, Any]]:
        params: dict[str, str | int] = {"state": "open", "per_page": 100}
        if creator:
            params["creator"] = creator
        url: str | None = f"/repos/{self.repo}/issues"
        pages = 0
        while url and pages < self.max_pages:
            response = self._request("GET", url, params=params if pages == 0 else None)
            pages += 1
            for item in response.json():
                if "pull_request" not in item:
                    yield item
            match = _NEXT.search(response.headers.get("link", ""))
            url = match.group(1) if match else None

    def get(self, number: int | str) -> dict[str, Any] | None:
        """One issue (open or closed), or ``None`` if it does not exist (any more)."""
        response = self._request("GET", f"/repos/{self.repo}/issues/{number}", allow=(404, 410))
        return None if response.status_code in (404, 410) else dict(response.json())

    def create(
        self,
        title: str,
        body: str,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"title": title, "body": body}
        if labels:
            payload["labels"] = labels
        if assignees:
            payload["assignees"] = assignees
        return dict(self._request("POST", f"/repos/{self.repo}/issues", json=payload).json())

    def update(self, number: int, **fields: Any) -> dict[str, Any]:
        return dict(
            self._request("PATCH", f"/repos/{self.repo}/issues/{number}", json=fields).json()
        )

    def comment(self, number: int, body: str) -> dict[str, Any]:
        return dict(
            self._request(
                "POST", f"/repos/{self.repo}/issues/{number}/comments", json={"body": body}
            ).json()
        )

    def close_connection(self) -> None:
        self.client.close()
