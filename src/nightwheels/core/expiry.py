"""Freshness of a project's nightlies: how old its last upload is, and when its wheels expire.

Pure rules, no I/O. Under the retention policy (``core/retention.py``), a version whose latest
upload is older than ``days`` is pruned, except the project's newest version; so ``days``
after the last upload, every older nightly is gone and only the newest remains. Maintainers are
warned at ``warn_days`` and ``final_days`` without an upload. A project is *stale* from the
warning threshold on (what ``nightwheels stale`` lists).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class FreshnessPolicy:
    """The defaults match the hosted channel: keep 5 versions, 30 days, warn at 15 and 25."""

    keep: int = 5
    days: int = 30
    warn_days: int = 15
    final_days: int = 25
    exempt: bool = False


class State(StrEnum):
    EMPTY = "empty"  # no live file
    FRESH = "fresh"
    WARN = "warn"  # past the first warning
    FINAL = "final"  # past the final warning
    EXPIRED = "expired"  # older versions pruned; only the newest is left
    EXEMPT = "exempt"  # never pruned


STALE_STATES = frozenset({State.WARN, State.FINAL, State.EXPIRED})


@dataclass(frozen=True)
class Freshness:
    state: State
    last_upload: datetime | None
    age_days: int | None  # whole days since the last upload
    expires_in_days: int | None  # whole days until older wheels are pruned (negative: ago)

    @property
    def stale(self) -> bool:
        return self.state in STALE_STATES

    @property
    def summary(self) -> str:
        """One short sentence for people."""
        if self.state is State.EMPTY:
            return "no wheels uploaded yet"
        if self.state is State.EXEMPT:
            return "exempt from retention: wheels do not expire"
        assert self.expires_in_days is not None
        if self.expires_in_days > 0:
            n = self.expires_in_days
            return f"older wheels expire in {n} day{'s' if n != 1 else ''} without a new upload"
        if self.expires_in_days == 0:
            return "older wheels expire today without a new upload"
        n = -self.expires_in_days
        return f"older wheels expired {n} day{'s' if n != 1 else ''} ago; only the newest is kept"


def assess(last_upload: datetime | None, now: datetime, policy: FreshnessPolicy) -> Freshness:
    """Classify a project by the time of its last upload (``now`` and it must be aware)."""
    if last_upload is None:
        return Freshness(State.EMPTY, None, None, None)
    age = max(0, int((now - last_upload).total_seconds() // DAY_SECONDS))
    if policy.exempt:
        return Freshness(State.EXEMPT, last_upload, age, None)
    expires_in = policy.days - age
    if age >= policy.days:
        state = State.EXPIRED
    elif age >= policy.final_days:
        state = State.FINAL
    elif age >= policy.warn_days:
        state = State.WARN
    else:
        state = State.FRESH
    return Freshness(state, last_upload, age, expires_in)
