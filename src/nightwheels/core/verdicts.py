"""What a downstream's reported run says about one upstream: the cell of the matrix.

Pure rules (no I/O), shared by the matrix, the per-build verdicts, the badges and the
alerts, so that "failed, culprit numpy" means the same thing everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["STALE_AFTER", "Verdict", "verdict"]

STALE_AFTER = timedelta(days=8)  # a weekly job that missed a week


class Verdict(StrEnum):
    PASSED = "passed"
    CULPRIT = "culprit"  # failed, and the bisect named this upstream
    FAILED_OTHER = "failed-other"  # failed, another upstream named (or none could be)
    COULD_NOT_RUN = "could-not-run"  # could not install, or the tests could not run
    STALE = "stale"  # no report for STALE_AFTER

    @property
    def failing(self) -> bool:
        return self in (Verdict.CULPRIT, Verdict.FAILED_OTHER)


def verdict(
    outcome: str,
    culprits: list[str] | tuple[str, ...],
    upstream: str,
    tested_at: datetime,
    now: datetime,
) -> Verdict:
    """The verdict of a run on ``upstream`` (normalised names). Outcomes other than
    ``passed`` and ``failed`` (``install-error``, ``could-not-run``, anything a newer client
    sends) mean the run says nothing about the code: could not run."""
    if now - tested_at > STALE_AFTER:
        return Verdict.STALE
    if outcome == "passed":
        return Verdict.PASSED
    if outcome == "failed":
        return Verdict.CULPRIT if upstream in culprits else Verdict.FAILED_OTHER
    return Verdict.COULD_NOT_RUN
