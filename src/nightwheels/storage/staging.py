"""Staging an incoming file: written to a temporary file while it is hashed.

Hashes are computed as bytes arrive, and a staging file that is not committed is always
removed. A batch of small files may be kept in memory instead, within a
:class:`MemoryBudget` per request and one per process (creating a file costs more than
parsing a small wheel's part of the body); a file that does not fit goes to disk, so the
server never holds more than the process's budget of uploads in memory.
"""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nightwheels.core.sizes import format_size
from nightwheels.errors import TooLarge
from nightwheels.storage.base import disk_error

STAGING_SUFFIX = ".part"


@dataclass(frozen=True)
class StagedFile:
    """A complete received file: on disk at ``path``, or held in ``data``."""

    path: Path | None
    size: int
    sha256: str
    md5: str
    blake2_256: str
    data: bytes | None = None

    def source(self) -> Path | BinaryIO:
        """What to read the file from (a path, or a stream over the bytes in memory)."""
        if self.path is not None:
            return self.path
        assert self.data is not None
        return io.BytesIO(self.data)

    def discard(self) -> None:
        """Remove the file if it is still staged (a committed file was moved away)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class MemoryBudget:
    """Bytes that staging files may keep in memory, in all: a request's share, drawn from
    the process's (``parent``) so that concurrent requests cannot add up past it."""

    def __init__(self, limit: int, parent: MemoryBudget | None = None) -> None:
        self.left = limit
        self.parent = parent
        self._taken = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        with self._lock:
            if size > self.left or (self.parent is not None and not self.parent.take(size)):
                return False
            self.left -= size
            self._taken += size
            return True

    def give_back(self, size: int) -> None:
        with self._lock:
            self.left += size
            self._taken -= size
        if self.parent is not None:
            self.parent.give_back(size)

    def close(self) -> None:
        """The request is over (its buffers are dropped): return its share to the parent."""
        with self._lock:
            taken = self._taken
        if taken:
            self.give_back(taken)


class StagingFile:
    def __init__(self, tmp_dir: Path, max_size: int, memory: MemoryBudget | None = None) -> None:
        self.tmp_dir = tmp_dir
        self.path = tmp_dir / f"upload-{uuid.uuid4().hex}{STAGING_SUFFIX}"
        self.max_size = max_size
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._blake2 = hashlib.blake2b(digest_size=32)
        self._memory = memory
        self._buffer: bytearray | None = bytearray() if memory is not None else None
        self._fh: BinaryIO | None = None if memory is not None else self._open()

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "xb")
        except FileNotFoundError:  # the folder went away (created at start-up): again
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            return open(self.path, "xb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_size:
            raise TooLarge(
                f"the file is larger than this index's limit of {format_size(self.max_size)}"
            )
        self._sha256.update(data)
        self._md5.update(data)
        self._blake2.update(data)
        if self._buffer is not None:
            assert self._memory is not None
            if self._memory.take(len(data)):
                self._buffer += data
                return
            # Over budget: to disk, with what was held so far.
            self._memory.give_back(len(self._buffer))
            data, self._buffer = bytes(self._buffer) + data, None
        try:
            if self._fh is None:
                self._fh = self._open()
            self._fh.write(data)
        except OSError as exc:
            raise disk_error(exc) from None

    def finish(self) -> StagedFile:
        """Close the file. No fsync here: this runs on the event loop, and the blob store
        makes the bytes durable when it commits them (in a worker thread)."""
        digests = (self._sha256.hexdigest(), self._md5.hexdigest(), self._blake2.hexdigest())
        if self._buffer is not None:
            return StagedFile(None, self.size, *digests, data=bytes(self._buffer))
        assert self._fh is not None  # opened at the start, or when the budget ran out
        try:
            self._fh.flush()
        except OSError as exc:
            raise disk_error(exc) from None
        finally:
            self._fh.close()
        return StagedFile(self.path, self.size, *digests)

    def discard(self) -> None:
        self._buffer = None
        if self._fh is not None and not self._fh.closed:
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
