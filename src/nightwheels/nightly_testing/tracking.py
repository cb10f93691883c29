"""The tracking issue: open it on failure, comment while it keeps failing, close it on success.

The issue is found by a hidden marker in its body *and* its author (the bot the token acts
as), never by its title or by search, which GitHub indexes with a delay and which would let
anyone's issue quoting the marker be taken over. At most one open issue per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from nightwheels.nightly_testing import markdown
from nightwheels.nightly_testing.results import Report
from nightwheels.trackers.github_issues import GitHubIssues

Action = Literal["created", "updated", "closed", "none"]


@dataclass(frozen=True)
class TrackingResult:
    action: Action
    number: int | None = None
    url: str | None = None


def find_tracking_issue(
    github: GitHubIssues, key: str, author: str, labels: list[str] | None = None
) -> dict[str, Any] | None:
    tag = markdown.marker(key)
    creator = None if author.endswith("[bot]") else author
    label_filter = ",".join(labels) if labels else None
    for issue in github.open_issues(creator=creator, labels=label_filter):
        if (issue.get("user") or {}).get("login") != author:
            continue
        if tag in (issue.get("body") or ""):
            return issue
    return None


def update_tracking_issue(
    github: GitHubIssues,
    report: Report,
    *,
    key: str = "nightly",
    author: str | None = None,
    labels: list[str] | None = None,
) -> TrackingResult:
    author = author or github.login()
    issue = find_tracking_issue(github, key, author, labels)
    failing = report.outcome != "passed"
    if issue is None:
        if not failing:
            return TrackingResult("none")
        created = github.create(
            markdown.title(report), markdown.render(report, key=key), labels=labels
        )
        return TrackingResult("created", created.get("number"), created.get("html_url"))
    number = int(issue["number"])
    if failing:
        github.update(number, title=markdown.title(report), body=markdown.render(report, key=key))
        github.comment(number, markdown.comment(report))
        return TrackingResult("updated", number, issue.get("html_url"))
    github.comment(number, markdown.comment(report))
    github.update(number, state="closed", state_reason="completed")
    return TrackingResult("closed", number, issue.get("html_url"))
