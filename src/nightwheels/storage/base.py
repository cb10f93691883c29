"""The blob store interface: immutable, content-addressed bytes.

Keys look like ``sha256/ab/cd/<digest>``. A blob is written whole or not at all:
callers stage bytes in a local temporary file, then :meth:`BlobStore.put_file`
commits it under its key.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from nightwheels.errors import StorageFull


def disk_error(exc: OSError) -> Exception:
    """A full disk or quota as the error a person can act on; any other error as it is."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the server's storage is full; try again later")
    return exc


def blob_key(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def digest_from_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) == 4 and parts[0] == "sha256" and len(parts[3]) == 64:
        return parts[3]
    return None


class BlobStore(Protocol):
    def put_file(self, key: str, path: Path) -> None:
        """Commit a complete local file under ``key`` (consumes ``path``); no-op if present."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Commit ``data`` under ``key``; no-op if present (small blobs: metadata)."""

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None: ...

    def local_path(self, key: str) -> Path | None:
        """A filesystem path to serve with sendfile, when the store is local."""

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]: ...

    def read_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def iter_keys(self) -> Iterator[str]: ...

    def url(self, key: str, filename: str) -> str | None:
        """A URL clients can fetch the blob from directly (object stores), else ``None``."""
