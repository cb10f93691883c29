"""Read-only project information."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from nightwheels.core.names import normalize_name
from nightwheels.db.models import File, Project
from nightwheels.db.queries import LIVE, project_by_name
from nightwheels.errors import NotFound
from nightwheels.server.api.deps import ReadSession

router = APIRouter(tags=["projects"])


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
def list_projects(session: ReadSession) -> list[ProjectSummary]:
    rows = session.execute(
        select(Project.name, Project.display_name, func.count(File.id), func.max(File.uploaded_at))
        .outerjoin(File, (File.project_id == Project.id) & LIVE)
        .group_by(Project.id)
        .order_by(Project.name)
    )
    return [
        ProjectSummary(name=n, display_name=d, files=c, last_upload=t.isoformat() if t else None)
        for n, d, c, t in rows
    ]


@router.get("/projects/{name}")
def get_project(name: str, session: ReadSession) -> ProjectDetail:
    normalized = normalize_name(name)
    project = project_by_name(session, normalized)
    if project is None:
        raise NotFound(f"no project named {normalized!r}")
    files = session.execute(
        select(File)
        .where(File.project_id == project.id, LIVE)
        .order_by(File.uploaded_at.desc(), File.filename)
    ).scalars()
    return ProjectDetail(
        name=project.name,
        display_name=project.display_name,
        serial=project.serial,
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
            for f in files
        ],
    )
