"""A folder of content-addressed files: the embedded default."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from nightwheels.errors import StorageUnavailable
from nightwheels.storage.base import digest_from_key, disk_error


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if digest_from_key(key) is None:
            raise ValueError(f"not a blob key: {key!r}")
        return self.root / key

    def _refresh(self, target: Path) -> bool:
        """Whether ``target`` is stored; if so its time is refreshed, which tells a
        concurrent garbage collection that the blob is in use again (see delete_if_idle).
        If gc moved it away between our check and now, utime fails and it is stored afresh.
        """
        try:
            os.utime(target)
        except FileNotFoundError:
            return False
        return True

    def put_bytes(self, key: str, data: bytes) -> None:
        target = self._path(key)
        if self._refresh(target):
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            with open(part, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(part, target)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise disk_error(exc) from None

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        if self._refresh(target):
            path.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            try:
                os.replace(path, target)  # atomic when the staging dir is on this filesystem
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                part = target.with_name(f".{target.name}.{os.getpid()}.part")
                try:
                    shutil.copyfile(path, part)
                    os.replace(part, target)
                finally:
                    part.unlink(missing_ok=True)  # a full disk must not leave a partial copy
                path.unlink()
        except OSError as exc:
            path.unlink(missing_ok=True)
            raise disk_error(exc) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def check(self) -> None:
        """Raise :class:`StorageUnavailable` unless the folder can be read and written."""
        if not self.root.is_dir() or not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageUnavailable(f"the blob folder {self.root} is missing or not writable")

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with open(self._path(key), "rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def iter_keys(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for path in base.glob("*/*/*"):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()

    def modified(self, key: str) -> datetime | None:
        try:
            return datetime.fromtimestamp(self._path(key).stat().st_mtime, UTC)
        except FileNotFoundError:
            return None

    def delete_if_idle(self, key: str, cutoff: datetime) -> bool:
        """Delete a blob unless it was stored or re-stored after ``cutoff``.

        The blob is first renamed away, then its time is read: an upload that re-stored
        the same bytes either touched it before the rename (seen here: it is put back)
        or finds it gone and writes it again. Either way no committed row loses its blob.
        """
        target = self._path(key)
        aside = target.with_name(f".{target.name}.{os.getpid()}.gc")
        try:
            os.replace(target, aside)
        except FileNotFoundError:
            return False
        try:
            modified = datetime.fromtimestamp(aside.stat().st_mtime, UTC)
        except FileNotFoundError:  # another collection's recovery put it back
            return False
        if modified > cutoff:
            if target.exists():  # stored again meanwhile: same bytes
                aside.unlink()
            else:
                os.replace(aside, target)
            return False
        aside.unlink(missing_ok=True)
        return True

    def leftovers(self) -> Iterator[Path]:
        """Partial files of interrupted writes or collections (``.<digest>.<pid>.*``)."""
        base = self.root / "sha256"
        if base.is_dir():
            for path in base.glob("*/*/.*"):
                if path.is_file():
                    yield path

    def url(self, key: str, filename: str) -> str | None:
        return None
