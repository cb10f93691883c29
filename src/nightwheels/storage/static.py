"""Where a static export is written: a folder, or an S3-compatible bucket.

Every write is whole or absent: a folder write goes to a temporary name and is renamed,
an object PUT is atomic. Paths are relative, ``/``-separated and built by the exporter
from validated names, never from user input.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Protocol

from nightwheels.errors import StorageUnavailable
from nightwheels.storage.s3 import NOT_FOUND, error_code, make_client, split_url


class StaticTarget(Protocol):
    def describe(self) -> str: ...

    def exists(self, path: str) -> bool: ...

    def read_bytes(self, path: str) -> bytes | None: ...

    def write_bytes(self, path: str, data: bytes, content_type: str, cache: str) -> None: ...

    def write_file(self, path: str, local: Path, content_type: str, cache: str) -> None: ...

    def delete(self, path: str) -> None: ...


def _check(path: str) -> str:
    parts = path.split("/")
    if parts[-1] == "":  # a directory key, "simple/x/"
        parts.pop()
    if not parts or any(part in ("", ".", "..") or "\\" in part for part in parts):
        raise ValueError(f"not a relative export path: {path!r}")
    return path


class FolderTarget:
    """A directory tree that any web server can serve (``simple/<name>/index.html``)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create {self.root}: {exc.strerror}") from None

    def describe(self) -> str:
        return str(self.root)

    def _path(self, path: str) -> Path:
        return self.root / _check(path)

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def read_bytes(self, path: str) -> bytes | None:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            return None

    def _replace(self, target: Path, fill: Any) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            fill(part)
            part.chmod(0o644)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)

    def write_bytes(self, path: str, data: bytes, content_type: str, cache: str) -> None:
        self._replace(self._path(path), lambda part: part.write_bytes(data))

    def write_file(self, path: str, local: Path, content_type: str, cache: str) -> None:
        self._replace(self._path(path), lambda part: shutil.copyfile(local, part))

    def delete(self, path: str) -> None:
        self._path(path).unlink(missing_ok=True)


class S3Target:
    """A bucket prefix. Pages are also stored under their directory key (``simple/x/``),
    so a plain public bucket answers ``GET .../simple/x/`` without index documents."""

    def __init__(self, url: str, client: Any = None) -> None:
        self.bucket, self.prefix = split_url(url)
        self.client = client if client is not None else make_client()

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _key(self, path: str) -> str:
        path = _check(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def _fail(self, action: str, exc: Exception) -> StorageUnavailable:
        return StorageUnavailable(f"cannot {action} in {self.describe()}: {error_code(exc) or exc}")

    def exists(self, path: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(path))
            return True
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                return False
            raise self._fail("read", exc) from None

    def read_bytes(self, path: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
            return bytes(response["Body"].read())
        except Exception as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise self._fail("read", exc) from None

    def _aliases(self, path: str) -> list[str]:
        keys = [self._key(path)]
        if path.endswith("/index.html"):
            keys.append(self._key(path[: -len("index.html")]))
        return keys

    def write_bytes(self, path: str, data: bytes, content_type: str, cache: str) -> None:
        for key in self._aliases(path):
            try:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentType=content_type,
                    CacheControl=cache,
                )
            except Exception as exc:
                raise self._fail("write", exc) from None

    def write_file(self, path: str, local: Path, content_type: str, cache: str) -> None:
        extra = {"ContentType": content_type, "CacheControl": cache}
        try:
            self.client.upload_file(str(local), self.bucket, self._key(path), ExtraArgs=extra)
        except Exception as exc:
            raise self._fail("write", exc) from None

    def delete(self, path: str) -> None:
        for key in self._aliases(path):
            try:
                self.client.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                raise self._fail("delete", exc) from None


def open_target(dest: str, client: Any = None) -> StaticTarget:
    """``s3://bucket/prefix`` or a folder path."""
    if dest.startswith("s3://"):
        return S3Target(dest, client)
    if "://" in dest:
        raise StorageUnavailable(f"{dest!r}: export to a folder or an s3://bucket/prefix URL")
    return FolderTarget(Path(dest))
