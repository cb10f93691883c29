"""Copying a whole index to another database and file store, in either direction
(e.g. the embedded SQLite + folder to PostgreSQL + S3).

Nothing is lost and nothing is half-written:

1. every blob of the source store is copied, its bytes hashed on the way and checked
   against the digest in its key, then read back from the target and hashed again;
2. all rows are copied from one consistent snapshot of the source, keeping their ids,
   in one transaction on the target; blobs that rows name but step 1 did not see
   (uploads meanwhile) are copied before the commit, and a row naming bytes the source
   does not have aborts the migration;
3. the transaction commits only if row counts match and the source serial did not move
   (writes during the migration would be lost: stop the servers first).

A failed run leaves the target database empty; copied blobs are content-addressed, so a
second run verifies and reuses them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.orm import Session

from nightwheels.db.models import Base, File, IndexState
from nightwheels.errors import Conflict, CorruptBlob
from nightwheels.services.context import Services
from nightwheels.services.parallel import in_parallel
from nightwheels.storage.base import blob_key, digest_from_key

BATCH = 1000
Progress = Callable[[str], None]


@dataclass
class MigrationResult:
    serial: int
    rows: dict[str, int] = field(default_factory=dict)
    blobs_copied: int = 0
    blobs_reused: int = 0
    bytes_copied: int = 0


def _hash_blob(services: Services, key: str) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    for chunk in services.store.iter_chunks(key):
        hasher.update(chunk)
        size += len(chunk)
    return hasher.hexdigest(), size


def _copy_blob(source: Services, target: Services, key: str, readback: bool) -> int | None:
    """Copy one blob with its digest checked both ways; ``None`` if the target had it."""
    digest = digest_from_key(key)
    assert digest is not None
    if target.store.exists(key):
        actual, _ = _hash_blob(target, key)
        if actual != digest:
            raise CorruptBlob(
                f"the target already holds {key} with other bytes (sha256 {actual}): "
                "remove it from the target store and run again"
            )
        return None
    tmp = target.settings.tmp_dir
    tmp.mkdir(parents=True, exist_ok=True)
    local = tmp / f"migrate-{uuid.uuid4().hex}.part"
    hasher = hashlib.sha256()
    size = 0
    try:
        with open(local, "wb") as fh:
            try:
                for chunk in source.store.iter_chunks(key):
                    hasher.update(chunk)
                    size += len(chunk)
                    fh.write(chunk)
            except FileNotFoundError:
                raise CorruptBlob(f"the source store has no bytes for {key}") from None
        if hasher.hexdigest() != digest:
            raise CorruptBlob(
                f"the source's bytes for {key} do not match their digest "
                f"(sha256 {hasher.hexdigest()}): the source store is damaged; run fsck"
            )
        target.store.put_file(key, local)  # consumes the local file
    finally:
        local.unlink(missing_ok=True)
    if readback and _hash_blob(target, key) != (digest, size):
        raise CorruptBlob(f"{key} read back from the target does not match its digest")
    return size


def _tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name != "alembic_version"]


def _target_is_empty(session: Session) -> list[str]:
    busy = []
    for table in _tables():
        if table.name == IndexState.__tablename__:
            continue
        if session.execute(select(func.count()).select_from(table)).scalar_one():
            busy.append(table.name)
    return busy


def _reset_sequences(session: Session) -> None:
    """PostgreSQL: the next generated ids continue after the copied ones."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        if "id" not in table.c or not table.c.id.primary_key:
            continue
        session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608
                f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"
            )
        )


def migrate_index(
    source: Services,
    target: Services,
    *,
    readback: bool = True,
    jobs: int = 8,
    progress: Progress | None = None,
) -> MigrationResult:
    """Copy the index of ``source`` into ``target`` (migrated, empty database)."""
    say = progress or (lambda _message: None)
    with target.db.read() as session:
        busy = _target_is_empty(session)
    if busy:
        raise Conflict(
            f"the target database already holds an index (tables {', '.join(busy)}): "
            "migrate into an empty database"
        )
    result = MigrationResult(serial=-1)
    copied: set[str] = set()
    lock = threading.Lock()

    def copy(key: str) -> None:
        size = _copy_blob(source, target, key, readback)
        with lock:
            if size is None:
                result.blobs_reused += 1
            else:
                result.blobs_copied += 1
                result.bytes_copied += size
            copied.add(key)

    say("copying files")
    in_parallel(copy, source.store.iter_keys(), jobs)

    say("copying rows")
    with source.db.read() as src, target.db.write() as dst:
        if src.get_bind().dialect.name == "postgresql":
            src.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        result.serial = src.execute(select(IndexState.serial)).scalar_one()
        named: set[str] = set()
        dst.execute(delete(IndexState.__table__))
        for table in _tables():
            count = 0
            query = select(table).order_by(*table.primary_key.columns)
            rows = src.execute(query.execution_options(yield_per=BATCH))
            for batch in rows.mappings().partitions(BATCH):
                values = [dict(row) for row in batch]
                dst.execute(insert(table), values)
                count += len(values)
                if table.name == File.__tablename__:
                    for row in values:
                        named.add(blob_key(row["sha256"]))
                        if row["metadata_sha256"]:
                            named.add(blob_key(row["metadata_sha256"]))
            result.rows[table.name] = count
        # Files uploaded while the others were being copied.
        in_parallel(copy, iter(sorted(named - copied)), jobs)
        _reset_sequences(dst)
        for table in _tables():
            there = dst.execute(select(func.count()).select_from(table)).scalar_one()
            if there != result.rows[table.name]:
                raise Conflict(
                    f"table {table.name}: copied {result.rows[table.name]} rows, found {there}"
                )
        with source.db.read() as again:
            now = again.execute(select(IndexState.serial)).scalar_one()
        if now != result.serial:
            raise Conflict(
                f"the source index changed during the migration (serial {result.serial} -> "
                f"{now}): stop the servers and run again; the target was left empty"
            )
    return result
