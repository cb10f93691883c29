"""Read-only project information."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from nightwheels.server.api.deps import AuthFirstRoute, ReadSession
from nightwheels.services import browse

router = APIRouter(tags=["projects"], route_class=AuthFirstRoute)


class ProjectSummary(BaseModel):
    name: str
    display_name: str
    files: int
    last_upload: str | None


class FileInfo(BaseModel):
    filename: str
    version: str
    label: str
    sha256: str
    size: int
    uploaded_at: str
    yanked: bool
    yanked_reason: str | None


class ProjectDetail(BaseModel):
    name: str
    display_name: str
    serial: int
    files: list[FileInfo]


@router.get("/projects")
def list_projects(
    request: Request,
    response: Response,
    session: ReadSession,
    after: str | None = Query(
        None, max_length=200, description="the last name of the previous page (a cursor)"
    ),
    limit: int = Query(browse.PROJECTS_PAGE, ge=1, le=browse.PROJECTS_PAGE_MAX),
) -> list[ProjectSummary]:
    """Projects by name, a page at a time (100, or ``limit`` up to 1,000); a
    ``Link: <...>; rel="next"`` header names the next page while there is one."""
    rows, more = browse.project_list(session, after=after, limit=limit)
    if more:
        next_url = request.url.include_query_params(after=rows[-1].name, limit=limit)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return [
        ProjectSummary(
            name=r.name,
            display_name=r.display_name,
            files=r.files,
            last_upload=r.last_upload.isoformat() if r.last_upload else None,
        )
        for r in rows
    ]


@router.get("/projects/{name}")
def get_project(name: str, session: ReadSession) -> ProjectDetail:
    found = browse.project_files(session, name)
    return ProjectDetail(
        name=found.name,
        display_name=found.display_name,
        serial=found.serial,
        files=[
            FileInfo(
                filename=f.filename,
                version=f.version,
                label=f.label,
                sha256=f.sha256,
                size=f.size,
                uploaded_at=f.uploaded_at.isoformat(),
                yanked=f.yanked,
                yanked_reason=f.yanked_reason,
            )
            for f in found.files
        ],
    )
