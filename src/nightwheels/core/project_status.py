"""Project status markers (PEP 792): what each status means for uploads and listings.

A project is ``active`` unless marked otherwise. ``archived``: no new uploads, files
still served. ``quarantined``: no uploads and no files offered (e.g. malware).
``deprecated``: served as if active; installers may warn.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MAX_REASON_LENGTH", "ProjectStatus", "accepts_uploads", "offers_files"]

MAX_REASON_LENGTH = 1000


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DEPRECATED = "deprecated"
    QUARANTINED = "quarantined"


def accepts_uploads(status: str) -> bool:
    return status not in (ProjectStatus.ARCHIVED, ProjectStatus.QUARANTINED)


def offers_files(status: str) -> bool:
    return status != ProjectStatus.QUARANTINED
