"""The tracking issue: open it on failure, keep its description current, close it on success.

The issue is found by a hidden marker in its body *and* its author (the bot the token acts
as), never by its title, its labels or by search, which GitHub indexes with a delay and
which would let anyone's issue quoting the marker be taken over. At most one open issue
per key: the key alone identifies it, so adding ``--label`` later finds the same issue.

The description is replaced on every run; a comment is added only when the set of
failures or the culprit changed (a hidden digest in the description remembers them), so
a weekly failure that stays the same does not flood the thread. Only a passing run *with
nightlies* closes the issue: a run that found none proves nothing about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nightwheels.nightly_testing import markdown
from nightwheels.nightly_testing.known_bad import KnownRegression
from nightwheels.nightly_testing.results import Report
from nightwheels.trackers.github_issues import GitHubIssues

Action = Literal["created", "updated", "changed", "closed", "kept", "none"]


@dataclass(frozen=True)
class TrackingResult:
    action: Action
    number: int | None = None
    url: str | None = None


def find_tracking_issue(github: GitHubIssues, key: str, author: str) -> dict[str, Any] | None:
    tag = markdown.marker(key)
    creator = None if author.endswith("[bot]") else author
    for issue in github.open_issues(creator=creator):
        if (issue.get("user") or {}).get("login") != author:
            continue
        if tag in (issue.get("body") or ""):
            return issue
    return None


def _merged(existing: list[dict[str, Any]] | None, field: str, wanted: list[str]) -> list[str]:
    have = [str(item.get(field)) for item in existing or [] if item.get(field)]
    return list(dict.fromkeys([*have, *wanted]))


def update_tracking_issue(
    github: GitHubIssues,
    report: Report,
    *,
    key: str = "nightly",
    author: str | None = None,
    labels: list[str] | None = None,
    assignees: list[str] | None = None,
    known: Sequence[KnownRegression] = (),
) -> TrackingResult:
    author = author or github.login()
    issue = find_tracking_issue(github, key, author)
    failing = report.outcome != "passed"
    if issue is None:
        if not failing:
            return TrackingResult("none")
        created = github.create(
            markdown.title(report),
            markdown.render(report, key=key, known=known),
            labels=labels,
            assignees=assignees,
        )
        return TrackingResult("created", created.get("number"), created.get("html_url"))
    number = int(issue["number"])
    url = issue.get("html_url")
    if not failing and not report.nightlies:
        return TrackingResult("kept", number, url)
    if not failing:
        github.comment(number, markdown.comment(report))
        github.update(number, state="closed", state_reason="completed")
        return TrackingResult("closed", number, url)
    fields: dict[str, Any] = {
        "title": markdown.title(report),
        "body": markdown.render(report, key=key, known=known),
    }
    if labels:
        fields["labels"] = _merged(issue.get("labels"), "name", labels)
    if assignees:
        fields["assignees"] = _merged(issue.get("assignees"), "login", assignees)
    github.update(number, **fields)
    changed = markdown.read_state(issue.get("body") or "") != markdown.state(report)
    if changed:
        github.comment(number, markdown.comment(report))
    return TrackingResult("changed" if changed else "updated", number, url)
