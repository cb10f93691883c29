"""What an upstream alert says, and the interface of what delivers it (pure, no I/O).

The rules that decide alerts are in ``services/upstream_alerts.py``; the senders (webhook,
GitHub issue, e-mail) in ``trackers/alerts.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["Alert", "ChannelInfo", "Sender"]


@dataclass(frozen=True)
class Alert:
    """What a channel is told (also the webhook's JSON body, as a dict)."""

    id: int
    upstream: str
    build_version: str
    build_filename: str
    build_sha256: str
    downstream: str
    failures: list[str]
    run_url: str | None
    state: str  # open | resolved
    runs: int
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    known_bad: str | None = None

    @property
    def title(self) -> str:
        if self.state == "resolved":
            return f"{self.downstream} passes again with a newer {self.upstream} nightly"
        return f"{self.downstream}'s tests fail with {self.upstream} {self.build_version}"

    def body(self) -> str:
        lines = [
            f"{self.downstream}'s weekly test against nightlies names {self.upstream}'s nightly "
            f"build {self.build_filename} ({self.build_version}, sha256 {self.build_sha256[:12]}) "
            "as the first bad build.",
            "",
            f"Seen in {self.runs} run{'s' if self.runs != 1 else ''} since "
            f"{self.first_seen:%Y-%m-%d %H:%M} UTC (last {self.last_seen:%Y-%m-%d %H:%M} UTC).",
        ]
        if self.failures:
            lines += ["", "Failing tests:"] + [f"- {f}" for f in self.failures[:30]]
        if self.run_url:
            lines += ["", f"Run: {self.run_url}"]
        if self.known_bad:
            lines += ["", f"Marked as a known regression: {self.known_bad}"]
        if self.state == "resolved" and self.resolved_at:
            lines += ["", f"Resolved {self.resolved_at:%Y-%m-%d %H:%M} UTC."]
        return "\n".join(lines)

    def payload(self, action: str) -> dict[str, object]:
        return {
            "event": "nightwheels.upstream_alert",
            "action": action,
            "alert": self.id,
            "upstream": self.upstream,
            "build": {
                "version": self.build_version,
                "filename": self.build_filename,
                "sha256": self.build_sha256,
            },
            "downstream": self.downstream,
            "failures": self.failures,
            "run_url": self.run_url,
            "state": self.state,
            "runs": self.runs,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "title": self.title,
            "message": self.body(),
        }


@dataclass(frozen=True)
class ChannelInfo:
    id: int
    project: str
    kind: str
    target: str
    digest: bool
    has_secret: bool
    created_by: str
    created_at: datetime


class Sender(Protocol):
    """Delivers to one channel (trackers/alerts.py); answers a reference (an issue number)."""

    def send(
        self, channel: ChannelInfo, secret: str | None, alerts: list[Alert], action: str,
        ref: str | None,
    ) -> str | None: ...  # fmt: skip
