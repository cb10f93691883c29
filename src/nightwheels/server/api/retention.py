"""Read-only retention information: freshness of every project, storage usage, policy."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from nightwheels.server.api.deps import AuthFirstRoute, ReadSession, ServicesDep
from nightwheels.services import freshness as freshness_service
from nightwheels.services import retention

router = APIRouter(tags=["retention"], route_class=AuthFirstRoute)


class FreshnessInfo(BaseModel):
    project: str
    last_upload: str | None
    age_days: int | None
    level: str | None  # warn | final | None (fresh)
    exempt: bool


class UsageInfo(BaseModel):
    project: str
    live_files: int
    live_bytes: int
    history_files: int
    history_bytes: int
    quota_bytes: int | None


class RetentionInfo(BaseModel):
    project: str
    keep: int
    days: int
    tag_days: int
    exempt: bool
    overrides: dict[str, int | bool | None]
    usage: UsageInfo


def _usage(u: retention.Usage) -> UsageInfo:
    return UsageInfo(
        project=u.project,
        live_files=u.live_files,
        live_bytes=u.live_bytes,
        history_files=u.history_files,
        history_bytes=u.history_bytes,
        quota_bytes=u.quota_bytes,
    )


@router.get("/freshness")
def list_freshness(session: ReadSession, services: ServicesDep) -> list[FreshnessInfo]:
    """Every project's last upload and age; ``level`` is set from the warning threshold."""
    return [
        FreshnessInfo(
            project=f.project,
            last_upload=f.last_upload.isoformat() if f.last_upload else None,
            age_days=f.age_days,
            level=f.level,
            exempt=f.exempt,
        )
        for f in freshness_service.freshness(session, services.settings)
    ]


@router.get("/usage")
def list_usage(session: ReadSession) -> list[UsageInfo]:
    return [_usage(u) for u in retention.usage(session)]


@router.get("/projects/{name}/retention")
def get_retention(name: str, session: ReadSession, services: ServicesDep) -> RetentionInfo:
    info = retention.get_retention(services, name)
    (usage,) = retention.usage(session, info.project)
    return RetentionInfo(
        project=info.project,
        keep=info.effective.keep,
        days=info.effective.days,
        tag_days=info.effective.tag_days,
        exempt=info.effective.exempt,
        overrides={
            "keep": info.keep,
            "days": info.days,
            "exempt": info.exempt,
            "quota_bytes": info.quota_bytes,
        },
        usage=_usage(usage),
    )
