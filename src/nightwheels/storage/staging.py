"""Staging an incoming file: written to a temporary file while it is hashed.

The server never holds a whole upload in memory; hashes are computed as bytes arrive,
and a staging file that is not committed is always removed.
"""

from __future__ import annotations

import errno
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from nightwheels.errors import StorageFull, TooLarge

STAGING_SUFFIX = ".part"


@dataclass(frozen=True)
class StagedFile:
    path: Path
    size: int
    sha256: str
    md5: str
    blake2_256: str


class StagingFile:
    def __init__(self, tmp_dir: Path, max_size: int) -> None:
        self.path = tmp_dir / f"upload-{uuid.uuid4().hex}{STAGING_SUFFIX}"
        self.max_size = max_size
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._blake2 = hashlib.blake2b(digest_size=32)
        try:
            self._fh = open(self.path, "xb")  # noqa: SIM115 - closed in finish/discard
        except FileNotFoundError:  # the folder went away (created at start-up): again
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "xb")  # noqa: SIM115

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            raise TooLarge(f"the file is larger than this index's limit of {_human(self.max_size)}")
        self._sha256.update(data)
        self._md5.update(data)
        self._blake2.update(data)
        try:
            self._fh.write(data)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the server's storage is full; try again later") from None
            raise

    def finish(self) -> StagedFile:
        """Close the file. No fsync here: this runs on the event loop, and the blob store
        makes the bytes durable when it commits them (in a worker thread)."""
        try:
            self._fh.flush()
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFull("the server's storage is full; try again later") from None
            raise
        finally:
            self._fh.close()
        return StagedFile(
            self.path,
            self.size,
            self._sha256.hexdigest(),
            self._md5.hexdigest(),
            self._blake2.hexdigest(),
        )

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


def write_bytes_staged(tmp_dir: Path, data: bytes) -> StagedFile:
    staging = StagingFile(tmp_dir, max_size=len(data))
    try:
        staging.write(data)
        return staging.finish()
    except BaseException:
        staging.discard()
        raise


def _human(size: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:g} {unit}" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024  # type: ignore[assignment]
    raise AssertionError
