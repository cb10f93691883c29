"""When to tell a project's maintainers that its nightlies are stale. Pure rules, no I/O.

How stale a project is comes from ``core/expiry.py`` (also what the web UI shows): a warning
from ``warn_days`` without an upload, a final warning from ``final_days``; retention then
removes all but the newest version at its ``days``. A notice is resolved (a GitHub issue
closed) when a new upload arrives; a notice a maintainer closed by hand is not raised again
for ``cooldown_days``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from nightwheels.core.expiry import FreshnessPolicy, State, assess

Level = Literal["warn", "final"]
Action = Literal["warn", "final", "resolved"]
_RANK = {None: 0, "warn": 1, "final": 2}


@dataclass(frozen=True)
class Thresholds:
    warn_days: int = 15
    final_days: int = 25
    cooldown_days: int = 60


def level_for(last_upload: datetime, now: datetime, thresholds: Thresholds) -> Level | None:
    """The notice a project's age calls for: ``warn``, ``final`` (also once expired), or none."""
    policy = FreshnessPolicy(warn_days=thresholds.warn_days, final_days=thresholds.final_days)
    state = assess(last_upload, now, policy).state
    if state in (State.FINAL, State.EXPIRED):
        return "final"
    return "warn" if state is State.WARN else None


@dataclass(frozen=True)
class NoticeState:
    """What a notifier last said about a project (``episode``: the last upload it was about)."""

    episode: datetime | None = None
    level: Level | None = None
    is_open: bool = False
    suppressed_until: datetime | None = None
    ref: str | None = None


def next_action(
    state: NoticeState, last_upload: datetime, now: datetime, thresholds: Thresholds
) -> Action | None:
    """The notice to send now, if any."""
    level = level_for(last_upload, now, thresholds)
    if level is None:
        return "resolved" if state.is_open else None
    if state.suppressed_until is not None and now < state.suppressed_until:
        return None
    sent = state.level if state.episode == last_upload else None
    if _RANK[level] > _RANK[sent]:
        return level
    return None


@dataclass(frozen=True)
class Notice:
    """One message about one project, for any notifier."""

    project: str
    action: Action
    last_upload: datetime
    age_days: int
    removal_at: datetime  # when retention leaves only the newest version
    repository_url: str | None = None
    emails: tuple[str, ...] = ()
    index_url: str | None = None
    ref: str | None = None  # the notifier's reference from an earlier delivery

    @property
    def title(self) -> str:
        if self.action == "resolved":
            return f"Nightly wheels of {self.project} are fresh again"
        return f"Nightly wheels of {self.project}: no upload for {self.age_days} days"

    def body(self) -> str:
        when = f"{self.last_upload:%Y-%m-%d %H:%M} UTC"
        where = f" on {self.index_url}" if self.index_url else ""
        if self.action == "resolved":
            return f"A new nightly of {self.project} arrived{where}: the latest upload is {when}."
        final = "Final warning: " if self.action == "final" else ""
        if self.removal_at <= self.last_upload + timedelta(days=self.age_days):
            # Past the date already (a notice that comes late, or a project exempted
            # until recently): name the date as past, not as a promise.
            removal = (
                f"Since {self.removal_at:%Y-%m-%d}, retention removes every version but the "
                "newest (at its next run, if it has not yet)"
            )
        else:
            removal = (
                f"On {self.removal_at:%Y-%m-%d}, retention removes every version but the newest"
            )
        return (
            f"{final}the last nightly wheel of {self.project}{where} was uploaded {when}, "
            f"{self.age_days} days ago. The nightly build or upload job may be broken.\n\n"
            f"{removal}, and downstream projects keep testing against an ever older build. "
            "Upload a new nightly to resolve this; this notice is then closed automatically."
        )


@dataclass(frozen=True)
class Delivery:
    """What a notifier did. ``closed_by_maintainer``: its earlier notice was closed by hand."""

    outcome: Literal["sent", "skipped", "dry-run", "failed", "closed-by-maintainer"]
    ref: str | None = None
    detail: str = ""
    closed_at: datetime | None = None
