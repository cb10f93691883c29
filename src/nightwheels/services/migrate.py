"""Copying a whole index to another database and file store, in either direction
(e.g. the embedded SQLite + folder to PostgreSQL + S3).

Nothing is lost and nothing is half-written:

1. every blob the index names is copied, its bytes hashed on the way and checked against
   the digest in its key, then read back from the target and hashed again. The bytes of a
   listed file must be there and intact, or nothing is migrated; history (replaced, pruned,
   lost or quarantined files) is copied where the source still has intact bytes, and the
   rest is reported as skipped (``fsck --repair`` unlists a file whose bytes are gone, and
   such a file must not block a migration). Blobs no row names (left for gc) are not copied;
2. all rows are copied from one consistent snapshot of the source, keeping their ids,
   in one transaction on the target; blobs that rows name but step 1 did not see
   (uploads meanwhile) are copied before the commit, by the same rules;
3. the transaction commits only if row counts match and the source serial did not move
   (writes during the migration would be lost: stop the servers first).

A failed run leaves the target as it found it: the database empty, and the blobs this run
wrote to the target store deleted again (blobs that were there before are left alone).
A run killed outright leaves the database empty too; its blobs are content-addressed, so
the next run verifies and reuses them.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.orm import Session

from nightwheels.db.models import Base, File, IndexState
from nightwheels.db.queries import LIVE
from nightwheels.errors import Conflict, CorruptBlob
from nightwheels.services.context import Services
from nightwheels.services.parallel import in_parallel
from nightwheels.storage.base import blob_key, digest_from_key

log = logging.getLogger(__name__)

BATCH = 1000
Progress = Callable[[str], None]


@dataclass
class MigrationResult:
    serial: int
    rows: dict[str, int] = field(default_factory=dict)
    blobs_copied: int = 0
    blobs_reused: int = 0
    bytes_copied: int = 0
    # history blobs the source has no intact bytes for: key -> why (missing | damaged)
    skipped: dict[str, str] = field(default_factory=dict)
    orphans_left: int = 0  # blobs in the source store that no row names (gc's)


class _Unusable(CorruptBlob):
    """The source has no intact bytes for a blob (missing, or not matching its digest)."""

    def __init__(self, message: str, why: str) -> None:
        super().__init__(message)
        self.why = why


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
                raise _Unusable(
                    f"the source store has no bytes for {key}, which a listed file needs: "
                    "run `nightwheels fsck --repair` (it unlists files whose bytes are "
                    "gone), then migrate again",
                    "missing",
                ) from None
        if hasher.hexdigest() != digest:
            raise _Unusable(
                f"the source's bytes for {key} do not match their digest "
                f"(sha256 {hasher.hexdigest()}): the source store is damaged; run "
                "`nightwheels fsck --repair` (it quarantines them), then migrate again",
                "damaged",
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


def _named_keys(session: Session) -> tuple[set[str], set[str]]:
    """The blob keys rows name: (those of listed files, those of history only)."""
    live: set[str] = set()
    history: set[str] = set()
    rows = session.execute(
        select(File.sha256, File.metadata_sha256, LIVE).execution_options(yield_per=BATCH * 10)
    )
    for sha256, metadata_sha256, listed in rows:
        keys = live if listed else history
        keys.add(blob_key(sha256))
        if metadata_sha256:
            keys.add(blob_key(metadata_sha256))
    return live, history - live


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
    handled: set[str] = set()
    written: list[str] = []  # blobs this run put into the target store
    lock = threading.Lock()

    def copy(key: str, *, required: bool) -> None:
        try:
            size = _copy_blob(source, target, key, readback)
        except _Unusable as exc:
            if required:
                raise
            with lock:
                result.skipped[key] = exc.why
                handled.add(key)
            return
        with lock:
            if size is None:
                result.blobs_reused += 1
            else:
                written.append(key)
                result.blobs_copied += 1
                result.bytes_copied += size
            handled.add(key)

    def copy_all(live: set[str], history: set[str]) -> None:
        in_parallel(lambda k: copy(k, required=True), iter(sorted(live - handled)), jobs)
        in_parallel(lambda k: copy(k, required=False), iter(sorted(history - handled)), jobs)

    try:
        say("copying files")
        with source.db.read() as session:
            live, history = _named_keys(session)
        copy_all(live, history)
        _copy_rows(source, target, result, copy_all)
    except BaseException:
        if written:
            say(f"removing the {len(written)} files this run wrote to the target store")
            for key in written:
                try:
                    target.store.delete(key)
                except Exception as exc:  # the database is empty: a leftover is harmless
                    log.warning("could not remove %s from the target store: %s", key, exc)
        raise
    result.orphans_left = sum(
        1 for key in source.store.iter_keys() if digest_from_key(key) and key not in handled
    )
    return result


def _copy_rows(
    source: Services,
    target: Services,
    result: MigrationResult,
    copy_all: Callable[[set[str], set[str]], None],
) -> None:
    with source.db.read() as src, target.db.write() as dst:
        if src.get_bind().dialect.name == "postgresql":
            src.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        result.serial = src.execute(select(IndexState.serial)).scalar_one()
        live: set[str] = set()
        history: set[str] = set()
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
                        keys = live if row["removed_at"] is None else history
                        keys.add(blob_key(row["sha256"]))
                        if row["metadata_sha256"]:
                            keys.add(blob_key(row["metadata_sha256"]))
            result.rows[table.name] = count
        # Files uploaded while the others were being copied.
        copy_all(live, history - live)
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
                f"{now}): stop the servers and run again; the target was left as it was"
            )
