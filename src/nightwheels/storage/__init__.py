"""Blob stores: a local folder (default) or an S3-compatible bucket."""

from __future__ import annotations

from pathlib import Path

from nightwheels.storage.base import BlobStore, blob_key
from nightwheels.storage.local import LocalBlobStore

__all__ = ["BlobStore", "LocalBlobStore", "blob_key", "open_store"]


def open_store(
    url: str, *, public_url: str | None = None, presign_seconds: int = 3600
) -> BlobStore:
    """A folder path (or ``file://`` URL), or ``s3://bucket/prefix``."""
    if url.startswith("s3://"):
        from nightwheels.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url, public_url=public_url, presign_seconds=presign_seconds)
    if url.startswith("file://"):
        url = url[len("file://") :]
    return LocalBlobStore(Path(url))
