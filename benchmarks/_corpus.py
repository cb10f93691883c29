"""Build benchmark corpora through the real publish service (no HTTP, same validation)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from sqlalchemy import insert, select

from nightwheels.config import Settings
from nightwheels.db.migrate import upgrade
from nightwheels.db.models import File, Project
from nightwheels.services import accounts
from nightwheels.services.audit import SYSTEM
from nightwheels.services.auth import authenticate
from nightwheels.services.context import Services
from nightwheels.services.publish import UploadRequest, publish
from nightwheels.storage.staging import write_bytes_staged
from tests.support.wheels import make_wheel

TAGS = [
    f"cp{py}-cp{py}-{plat}"
    for py in (310, 311, 312, 313)
    for plat in (
        "manylinux_2_17_x86_64",
        "manylinux_2_17_aarch64",
        "macosx_11_0_arm64",
        "macosx_10_9_x86_64",
        "win_amd64",
    )
] + ["py3-none-any"]  # 21 tags


def build_corpus(data: Path, projects: int = 20, versions: int = 10, tags: int = 21) -> Services:
    settings = Settings(data=data)
    data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    services = Services.from_settings(settings)
    names = [f"proj{i:02d}" for i in range(projects)]
    with services.db.write() as session:
        user = accounts.create_user(session, SYSTEM, "bench", is_admin=True)
        token = accounts.create_token(session, SYSTEM, user, name="bench", projects=names)
    with services.db.write() as session:
        principal = authenticate(session, token.secret)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            for v in range(versions):
                version = f"1.0.0.dev2026110{v}0000"
                for tag in TAGS[:tags]:
                    wheel = make_wheel(Path(tmp), name, version, tag)
                    staged = write_bytes_staged(settings.tmp_dir, wheel.read_bytes())
                    publish(
                        services,
                        principal,
                        UploadRequest(
                            filename=wheel.name,
                            name=name,
                            version=version,
                            sha256_digest=staged.sha256,
                        ),
                        staged,
                    )
                    wheel.unlink()
    return services


def add_bulk_rows(services: Services, files: int, per_project: int = 1000) -> None:
    """Add ``files`` rows in other projects (rows only: the page under test must not care)."""
    with services.db.write() as session:
        start = session.execute(select(Project.id).order_by(Project.id.desc())).scalar() or 0
        count = 0
        p = 0
        while count < files:
            p += 1
            project = Project(name=f"bulk{start + p}", display_name=f"bulk{start + p}", serial=0)
            session.add(project)
            session.flush()
            rows = []
            for i in range(min(per_project, files - count)):
                digest = hashlib.sha256(f"{project.id}-{i}".encode()).hexdigest()
                rows.append(
                    dict(
                        project_id=project.id,
                        label="main",
                        filename=f"bulk{start + p}-1.0.dev{i}-py3-none-any.whl",
                        version=f"1.0.dev{i}",
                        packagetype="bdist_wheel",
                        sha256=digest,
                        size=100,
                        metadata_sha256=digest,
                    )
                )
            session.execute(insert(File), rows)
            count += len(rows)
