"""An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, Ceph) as the blob store.

Endpoint, region and credentials come from the standard AWS settings (``AWS_ENDPOINT_URL``
or ``AWS_ENDPOINT_URL_S3``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, ``~/.aws/config`` including ``s3.addressing_style``). A blob is uploaded
from its complete local staging file with ``upload_file``: a single PUT or a multipart
upload, either of which makes the object visible only once it is whole.

A multipart upload that fails is aborted (boto3 tries once; :meth:`S3BlobStore.put_file`
makes sure, since its parts are billed until then). One that a killed process left behind
is listed by :meth:`S3BlobStore.incomplete_uploads`, which ``fsck`` reports and ``fsck
--repair`` aborts; a bucket lifecycle rule (docs/scale.md) is the backstop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from nightwheels.errors import StorageUnavailable
from nightwheels.storage.base import digest_from_key

# An existing blob re-stored after this long is uploaded again: its fresh LastModified
# tells a garbage collection with a longer grace period that the bytes are in use again.
REFRESH_AFTER = timedelta(hours=1)
NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


def _import_boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise StorageUnavailable(
            "s3:// storage needs boto3: pip install 'nightwheels[s3]'"
        ) from None
    return boto3


def make_client() -> Any:
    """An S3 client configured by the standard AWS settings (SigV4, standard retries)."""
    boto3 = _import_boto3()
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        config=Config(
            signature_version="s3v4",
            retries={"mode": "standard", "max_attempts": 5},
            max_pool_connections=32,
            connect_timeout=5,
            read_timeout=60,
        ),
    )


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` to (bucket, prefix without slashes)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise StorageUnavailable(f"{url!r} is not an s3://bucket/prefix URL")
    return parts.netloc, parts.path.strip("/")


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        public_url: str | None = None,
        presign_seconds: int = 3600,
    ) -> None:
        if not bucket:
            raise StorageUnavailable("an s3:// storage URL needs a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self.presign_seconds = presign_seconds
        self.client = client if client is not None else make_client()

    @classmethod
    def from_url(
        cls, url: str, *, public_url: str | None = None, presign_seconds: int = 3600
    ) -> S3BlobStore:
        """``s3://bucket/prefix`` (the prefix is optional)."""
        bucket, prefix = split_url(url)
        return cls(bucket, prefix, public_url=public_url, presign_seconds=presign_seconds)

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix})"

    # -- keys ------------------------------------------------------------------------
    def _object(self, key: str) -> str:
        if digest_from_key(key) is None:
            raise ValueError(f"not a blob key: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def _unavailable(self, action: str, exc: Exception) -> StorageUnavailable:
        code = error_code(exc) or type(exc).__name__
        return StorageUnavailable(
            f"the object store could not {action} (s3://{self.bucket}/{self.prefix}: {code}); "
            "try again later"
        )

    def _head(self, key: str) -> dict[str, Any] | None:
        name = self._object(key)
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=name))
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise self._unavailable("read a file's details", exc) from None

    # -- the BlobStore interface -----------------------------------------------------
    def check(self) -> None:
        """Fail early, with a clear message, when the bucket cannot be reached."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            raise StorageUnavailable(
                f"cannot use bucket {self.bucket!r}: {error_code(exc) or exc}; check "
                "AWS_ENDPOINT_URL, AWS_REGION and the credentials"
            ) from None

    def put_file(self, key: str, path: Path) -> None:
        try:
            name = self._object(key)
            head = self._head(key)
            if head is not None and datetime.now(UTC) - head["LastModified"] < REFRESH_AFTER:
                return
            try:
                self.client.upload_file(str(path), self.bucket, name)
            except Exception as exc:
                self._abort_uploads_of(name)
                raise self._unavailable("store the file", exc) from None
        finally:
            path.unlink(missing_ok=True)

    # -- incomplete multipart uploads ----------------------------------------------------
    def _abort_uploads_of(self, name: str) -> None:
        """Abort the unfinished multipart uploads of one object (best effort: if the store
        is down now, fsck --repair or the bucket's lifecycle rule aborts them later)."""
        try:
            response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=name)
            for upload in response.get("Uploads", []):
                if upload["Key"] == name:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=name, UploadId=upload["UploadId"]
                    )
        except Exception:  # noqa: S110 - reported by fsck later
            pass

    def incomplete_uploads(self) -> Iterator[tuple[str, str, datetime]]:
        """Unfinished multipart uploads under this store's prefix: (object name, upload
        id, when it was started)."""
        prefix = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    yield upload["Key"], upload["UploadId"], upload["Initiated"].astimezone(UTC)
        except Exception as exc:
            raise self._unavailable("list unfinished uploads", exc) from None

    def abort_upload(self, name: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except Exception as exc:
            if error_code(exc) not in {"NoSuchUpload", *NOT_FOUND}:
                raise self._unavailable("abort an unfinished upload", exc) from None

    def put_bytes(self, key: str, data: bytes) -> None:
        head = self._head(key)
        if head is not None and datetime.now(UTC) - head["LastModified"] < REFRESH_AFTER:
            return
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data)
        except Exception as exc:
            raise self._unavailable("store the file", exc) from None

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def modified(self, key: str) -> datetime | None:
        head = self._head(key)
        return None if head is None else head["LastModified"].astimezone(UTC)

    def local_path(self, key: str) -> Path | None:
        return None

    def open(self, key: str, chunk_size: int = 1024 * 1024) -> tuple[int, Iterator[bytes]]:
        """Start reading a blob: its size and its chunks. ``FileNotFoundError`` if missing."""
        name = self._object(key)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                raise FileNotFoundError(key) from None
            raise self._unavailable("read the file", exc) from None
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()

        return int(response["ContentLength"]), chunks()

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        return self.open(key, chunk_size)[1]

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.iter_chunks(key))

    def delete(self, key: str) -> None:
        name = self._object(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            raise self._unavailable("delete a file", exc) from None

    def delete_if_idle(self, key: str, cutoff: datetime) -> bool:
        """Delete a blob unless it was stored or re-stored after ``cutoff``.

        S3 has no atomic rename, so an upload that re-stores these bytes between the
        check and the delete (milliseconds) is not seen; :data:`REFRESH_AFTER` keeps
        any blob re-stored in the last hour fresh, so a grace period longer than
        that makes the window harmless in practice.
        """
        when = self.modified(key)
        if when is None or when > cutoff:
            return False
        self.delete(key)
        return True

    def iter_keys(self) -> Iterator[str]:
        start = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    key = item["Key"][strip:]
                    if digest_from_key(key) is not None:
                        yield key
        except StorageUnavailable:
            raise
        except Exception as exc:
            raise self._unavailable("list files", exc) from None

    def url(self, key: str, filename: str) -> str | None:
        """A public URL (``public_url`` + key) or a presigned GET naming the file."""
        if self.public_url:
            return f"{self.public_url}/{quote(key)}"
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._object(key),
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=self.presign_seconds,
            )
        )
