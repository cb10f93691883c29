"""The index's data directory checked for what a crash may leave: rows, blobs, temp files.

``nightwheels fsck`` (services/fsck.py) is the product's check when it is installed; this
small independent one reads the SQLite file and the blob folder directly, so that a fault
test does not trust the code under test to judge itself. ``index_problems`` does the same
through the engines, for any backend (PostgreSQL and S3 included).
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from nightwheels.db.models import File, IndexState, Project
from nightwheels.storage.base import blob_key


def _blob(data: Path, sha256: str) -> Path:
    return data / "files" / "sha256" / sha256[:2] / sha256[2:4] / sha256


@dataclass
class Consistency:
    listed: list[str] = field(default_factory=list)  # live filenames
    missing: list[str] = field(default_factory=list)  # live rows whose bytes are gone
    corrupt: list[str] = field(default_factory=list)  # live rows whose bytes do not match
    orphans: list[Path] = field(default_factory=list)  # blobs no row refers to
    partials: list[Path] = field(default_factory=list)  # non-blob files in the store
    tmp: list[Path] = field(default_factory=list)  # staging leftovers

    @property
    def served_correctly(self) -> bool:
        """Every listed file (and its metadata) can be served with its recorded digest."""
        return not self.missing and not self.corrupt


def check(data: Path) -> Consistency:
    result = Consistency()
    db = sqlite3.connect(f"file:{data / 'nightwheels.db'}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT filename, sha256, metadata_sha256, removed_at IS NULL FROM files"
        ).fetchall()
    finally:
        db.close()
    referenced: set[str] = set()
    for filename, sha256, metadata_sha256, live in rows:
        referenced.update(d for d in (sha256, metadata_sha256) if d)
        if not live:
            continue
        result.listed.append(filename)
        for digest in (d for d in (sha256, metadata_sha256) if d):
            path = _blob(data, digest)
            if not path.is_file():
                result.missing.append(f"{filename}: {digest}")
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                result.corrupt.append(f"{filename}: {digest}")
    store = data / "files"
    for path in sorted(store.rglob("*")) if store.exists() else []:
        if not path.is_file():
            continue
        if path.parent.parent.parent == store / "sha256" and len(path.name) == 64 == len(
            path.name.strip(".")
        ):
            if path.name not in referenced:
                result.orphans.append(path)
        else:
            result.partials.append(path)
    tmp = data / "tmp"
    result.tmp = sorted(p for p in tmp.iterdir() if p.is_file()) if tmp.exists() else []
    return result


def index_problems(services: Any) -> list[str]:
    """Every file row's bytes and metadata are stored with their digest, one live row per
    (project, label, filename), and no project serial is ahead of the global serial."""
    problems: list[str] = []
    with services.db.read() as session:
        rows = session.execute(select(File.filename, File.sha256, File.size, File.metadata_sha256))
        wanted: dict[str, int | None] = {}
        for filename, sha256, size, metadata_sha256 in rows:
            wanted[sha256] = size
            if metadata_sha256 is None:
                problems.append(f"{filename}: no metadata digest")
            else:
                wanted.setdefault(metadata_sha256, None)
        duplicates = session.execute(
            select(File.project_id, File.label, File.filename)
            .where(File.removed_at.is_(None))
            .group_by(File.project_id, File.label, File.filename)
            .having(func.count() > 1)
        ).all()
        problems += [f"two live rows for {d}" for d in duplicates]
        top = session.execute(select(IndexState.serial)).scalar_one()
        ahead = session.execute(select(Project.name).where(Project.serial > top)).all()
        problems += [f"{name} has a serial above the global one" for (name,) in ahead]
    for digest, size in sorted(wanted.items()):
        key = blob_key(digest)
        if not services.store.exists(key):
            problems.append(f"missing blob {key}")
            continue
        data = services.store.read_bytes(key)
        if hashlib.sha256(data).hexdigest() != digest:
            problems.append(f"blob {key} does not match its digest")
        if size is not None and len(data) != size:
            problems.append(f"blob {key} has {len(data)} bytes, the row says {size}")
    return problems
