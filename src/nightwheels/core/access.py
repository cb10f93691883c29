"""Rules of the access workflow: request states, reviewer impartiality, representation.

SPEC 4 asks that admins granting upload access do not belong to the requester's project or
organisation, and that each project keep at least two representatives. Pure rules, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

RECOMMENDED_ADMINS = 2
MAX_REASON_LENGTH = 5000
MAX_COMMENT_LENGTH = 5000


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


def normalize_organisation(organisation: str | None) -> str | None:
    """Organisations compare case-insensitively with spaces collapsed; blank means unknown."""
    if organisation is None:
        return None
    folded = " ".join(organisation.split()).casefold()
    return folded or None


def same_organisation(a: str | None, b: str | None) -> bool:
    na, nb = normalize_organisation(a), normalize_organisation(b)
    return na is not None and na == nb


def approval_conflict(
    *,
    reviewer: str,
    reviewer_organisation: str | None,
    reviewer_role: str | None,
    requester: str,
    requester_organisation: str | None,
    project: str,
    reviewer_organisations: Iterable[str | None] = (),
    requester_organisations: Iterable[str | None] = (),
) -> str | None:
    """Why ``reviewer`` may not approve this request, or ``None`` if they may.

    The ``*_organisations`` are every organisation each held since the request was filed
    (issue 14, item 9): changing one's organisation after the request is filed never clears
    a conflict.
    """
    if reviewer == requester:
        return "you cannot approve your own request: another admin must review it"
    if reviewer_role is not None:
        return (
            f"you are a member ({reviewer_role}) of project {project!r}: an admin outside the "
            "project must review this request"
        )
    theirs = [requester_organisation, *requester_organisations]
    for mine in (reviewer_organisation, *reviewer_organisations):
        if any(same_organisation(mine, other) for other in theirs):
            now = same_organisation(mine, reviewer_organisation) and same_organisation(
                mine, requester_organisation
            )
            when = "" if now else " (since the request was filed)"
            return (
                f"you and {requester} are both from {mine!r}{when}: an admin from another "
                "organisation must review this request"
            )
    return None


def representation_warnings(project: str, admins: Sequence[tuple[str, str | None]]) -> list[str]:
    """Warnings while a project has fewer than two admins, or all from one organisation.

    ``admins`` holds (user name, organisation) pairs; an unknown organisation never counts
    as "the same".
    """
    warnings: list[str] = []
    if len(admins) < RECOMMENDED_ADMINS:
        warnings.append(
            f"project {project!r} has {len(admins)} admin{'s' if len(admins) != 1 else ''}: "
            f"at least {RECOMMENDED_ADMINS} are recommended, so that access survives one "
            "person leaving"
        )
    orgs = {normalize_organisation(org) for _, org in admins}
    if len(admins) >= RECOMMENDED_ADMINS and len(orgs) == 1 and None not in orgs:
        org = admins[0][1]
        warnings.append(
            f"all admins of project {project!r} are from {org!r}: admins from more than one "
            "organisation are recommended"
        )
    return warnings
