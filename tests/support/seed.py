"""Build an index state directly (rows and blobs), e.g. with files uploaded weeks ago.

Uploads through the server always happen "now"; retention needs a past. Rows are written
with SQLAlchemy, blobs through the real blob store, exactly as the publish service does
(blob first, then row).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.db.models import File, Project, utcnow
from nightwheels.services import serials
from nightwheels.services.context import Services
from nightwheels.storage.base import blob_key
from nightwheels.storage.staging import write_bytes_staged
from tests.support.backends import fresh_database, migrated_sqlite


def open_services(data: Path, **settings: object) -> Services:
    """The services on an index in ``data`` (SQLite: a copy of a migrated database)."""
    data.mkdir(parents=True, exist_ok=True)
    s = Settings(data=data, **settings)  # type: ignore[arg-type]
    db_file = data / "nightwheels.db"
    if s.database == f"sqlite:///{db_file.resolve()}" and not db_file.exists():
        shutil.copyfile(migrated_sqlite(), db_file)
    upgrade(s.database)
    return Services.from_settings(s)


@dataclass
class Seeded:
    id: int
    filename: str
    sha256: str
    metadata_sha256: str


def put_blob(services: Services, data: bytes) -> str:
    staged = write_bytes_staged(services.settings.tmp_dir, data)
    services.store.put_file(blob_key(staged.sha256), staged.path)
    return staged.sha256


def add_file(
    services: Services,
    project: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    days_ago: float = 0,
    label: str = "main",
    content: bytes | None = None,
    pinned: bool = False,
    now: datetime | None = None,
    removed_days_ago: float | None = None,
    removed_reason: str | None = None,
) -> Seeded:
    """One file row (and its blobs) in ``project``, uploaded ``days_ago``."""
    now = now or utcnow()
    module = project.replace("-", "_")
    filename = f"{module}-{version}-{tag}.whl"
    content = content if content is not None else f"{filename}@{label}".encode()
    sha256 = put_blob(services, content)
    meta = put_blob(
        services, f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n".encode()
    )

    def run(session):  # type: ignore[no-untyped-def]
        p = session.execute(select(Project).where(Project.name == project)).scalar_one_or_none()
        if p is None:
            p = Project(name=project, display_name=project)
            session.add(p)
            session.flush()
        row = File(
            project_id=p.id,
            label=label,
            filename=filename,
            version=version,
            packagetype="bdist_wheel",
            sha256=sha256,
            size=len(content),
            metadata_sha256=meta,
            uploaded_at=now - timedelta(days=days_ago),
            pinned=pinned,
            removed_at=(now - timedelta(days=removed_days_ago))
            if removed_days_ago is not None
            else None,
            removed_reason=removed_reason,
        )
        session.add(row)
        session.flush()
        serials.bump(session, p)
        return row.id

    file_id = services.db.run_write(run)
    return Seeded(file_id, filename, sha256, meta)


def live_filenames(services: Services, project: str, label: str = "main") -> set[str]:
    with services.db.read() as session:
        rows = session.execute(
            select(File.filename)
            .join(Project, Project.id == File.project_id)
            .where(Project.name == project, File.label == label, File.removed_at.is_(None))
        )
        return {name for (name,) in rows}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bulk_seed(
    services: Services,
    *,
    projects: int,
    versions: int,
    tags: tuple[str, ...] = ("cp312-cp312-manylinux_2_17_x86_64", "cp312-cp312-macosx_11_0_arm64"),
    hours_between: float = 24.0,
    now: datetime | None = None,
    prefix: str = "proj",
) -> int:
    """``projects`` x ``versions`` x ``tags`` live files, one version every ``hours_between``.

    All rows share one tiny blob (content addressing allows it) so that setup is fast; rows
    go in with executemany. Returns the number of file rows.
    """
    from sqlalchemy import insert

    now = now or utcnow()
    blob = put_blob(services, b"shared wheel bytes")
    meta = put_blob(services, b"Metadata-Version: 2.1\nName: x\nVersion: 0\n")
    count = 0
    with services.db.write() as session:
        names = [f"{prefix}{i:05d}" for i in range(projects)]
        session.execute(insert(Project), [{"name": n, "display_name": n} for n in names])
        ids = dict(session.execute(select(Project.name, Project.id)).all())
        rows = []
        for name in names:
            module = name.replace("-", "_")
            for v in range(versions):
                version = f"1.0.dev{v}"
                uploaded = now - timedelta(hours=hours_between * (versions - 1 - v))
                for tag in tags:
                    rows.append(
                        {
                            "project_id": ids[name],
                            "label": "main",
                            "filename": f"{module}-{version}-{tag}.whl",
                            "version": version,
                            "packagetype": "bdist_wheel",
                            "sha256": blob,
                            "size": 18,
                            "metadata_sha256": meta,
                            "uploaded_at": uploaded,
                        }
                    )
            if len(rows) >= 20000:
                session.execute(insert(File), rows)
                count += len(rows)
                rows = []
        if rows:
            session.execute(insert(File), rows)
            count += len(rows)
        for project in session.execute(select(Project)).scalars():
            serials.bump(session, project)
    return count


def postgres_database() -> tuple[str, Callable[[], None]]:
    """A fresh PostgreSQL database at the newest schema: (SQLAlchemy URL, drop)."""
    stack = ExitStack()
    return stack.enter_context(fresh_database(migrated=True)), stack.close
