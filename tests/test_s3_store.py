"""The S3 blob store against moto's S3 server, through the real boto3 client."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from nightwheels.errors import StorageUnavailable
from nightwheels.storage import open_store
from nightwheels.storage.base import blob_key
from nightwheels.storage.s3 import S3BlobStore
from tests.support.backends import MotoS3
from tests.support.server import free_port

pytestmark = pytest.mark.s3


@pytest.fixture
def bucket(moto_s3: MotoS3) -> Iterator[str]:
    with moto_s3.fresh_bucket() as name:
        yield name


def stage(tmp_path: Path, data: bytes) -> tuple[str, Path]:
    path = tmp_path / f"staged-{len(data)}-{hashlib.sha256(data).hexdigest()[:8]}"
    path.write_bytes(data)
    return blob_key(hashlib.sha256(data).hexdigest()), path


def test_put_read_list_delete(tmp_path: Path, moto_s3: MotoS3, bucket: str) -> None:
    store = S3BlobStore(bucket, "/idx/", client=moto_s3.client())
    neighbour = S3BlobStore(bucket, "other", client=moto_s3.client())
    key, path = stage(tmp_path, b"wheel bytes")
    assert not store.exists(key) and store.size(key) is None and store.modified(key) is None
    store.put_file(key, path)
    assert not path.exists()  # consumed
    assert store.exists(key) and store.size(key) == 11
    assert store.read_bytes(key) == b"wheel bytes"
    size, chunks = store.open(key, chunk_size=4)
    assert size == 11 and b"".join(chunks) == b"wheel bytes"
    assert store.local_path(key) is None
    objects = moto_s3.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in objects] == [f"idx/{key}"]

    other_key, other_path = stage(tmp_path, b"neighbour")
    neighbour.put_file(other_key, other_path)
    moto_s3.client().put_object(Bucket=bucket, Key="idx/sha256/not-a-blob", Body=b"x")
    assert list(store.iter_keys()) == [key]
    assert list(neighbour.iter_keys()) == [other_key]

    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(FileNotFoundError):
        store.open(key)
    with pytest.raises(ValueError, match="not a blob key"):
        store.exists("../../etc/passwd")


def test_restoring_recent_bytes_is_a_noop_and_old_bytes_are_refreshed(
    tmp_path: Path, moto_s3: MotoS3, bucket: str
) -> None:
    store = S3BlobStore(bucket, client=moto_s3.client())
    key, path = stage(tmp_path, b"same")
    store.put_file(key, path)
    first = store.modified(key)
    assert first is not None
    key, path = stage(tmp_path, b"same")
    store.put_file(key, path)
    assert not path.exists()
    assert store.modified(key) == first

    # Garbage collection: a cutoff before the last store keeps it, after it deletes it.
    assert store.delete_if_idle(key, first - timedelta(seconds=1)) is False
    assert store.exists(key)
    assert store.delete_if_idle(key, datetime.now(UTC) + timedelta(seconds=5)) is True
    assert not store.exists(key)
    assert store.delete_if_idle(key, datetime.now(UTC)) is False


def test_a_large_file_goes_up_in_parts(tmp_path: Path, moto_s3: MotoS3, bucket: str) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above boto3's 8 MiB multipart threshold
    store = S3BlobStore(bucket, "p", client=moto_s3.client())
    key, path = stage(tmp_path, data)
    store.put_file(key, path)
    head = moto_s3.client().head_object(Bucket=bucket, Key=f"p/{key}")
    assert "-" in head["ETag"]  # a multipart upload's ETag
    assert hashlib.sha256(store.read_bytes(key)).hexdigest() == key.rsplit("/", 1)[1]


def test_urls(tmp_path: Path, moto_s3: MotoS3, bucket: str) -> None:
    store = S3BlobStore(bucket, "p", client=moto_s3.client(), presign_seconds=120)
    key, path = stage(tmp_path, b"payload")
    store.put_file(key, path)
    url = store.url(key, "demo-1.0-py3-none-any.whl")
    assert url is not None and "X-Amz-Expires=120" in url
    response = httpx.get(url)
    assert response.content == b"payload"
    assert 'filename="demo-1.0-py3-none-any.whl"' in response.headers["content-disposition"]
    public = S3BlobStore(bucket, "p", client=moto_s3.client(), public_url="https://cdn.example/x/")
    assert public.url(key, "f.whl") == f"https://cdn.example/x/{key}"


def test_from_url_and_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": os.devnull,
    }.items():
        monkeypatch.setenv(var, value)
    store = open_store("s3://bucket/some/prefix/")
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == ("bucket", "some/prefix")
    for bad in ("s3://", "s3:///prefix", "s3://b/p?versionId=1"):
        with pytest.raises(StorageUnavailable, match="is not an s3://bucket/prefix URL"):
            open_store(bad)
    with pytest.raises(StorageUnavailable, match="cannot use bucket 'bucket'"):
        store.check()
    with pytest.raises(StorageUnavailable, match="could not read"):
        store.exists(blob_key("a" * 64))


def test_unreachable_store_on_upload_removes_the_staged_file(
    tmp_path: Path, moto_s3: MotoS3
) -> None:
    store = S3BlobStore("no-such-bucket", client=moto_s3.client())
    key, path = stage(tmp_path, b"x")
    with pytest.raises(StorageUnavailable, match="could not store the file"):
        store.put_file(key, path)
    assert not path.exists()


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_put_bytes_stores_once(tmp_path: Path, moto_s3: MotoS3, bucket: str, kind: str) -> None:
    """Metadata goes in from memory; a blob already stored is only refreshed (gc's clock)."""
    from nightwheels.storage.local import LocalBlobStore

    store = (
        LocalBlobStore(tmp_path / "files")
        if kind == "local"
        else S3BlobStore(bucket, "meta", client=moto_s3.client())
    )
    data = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"
    key = blob_key(hashlib.sha256(data).hexdigest())
    store.put_bytes(key, data)
    assert store.read_bytes(key) == data
    if isinstance(store, LocalBlobStore):
        path = store.local_path(key)
        assert path is not None
        os.utime(path, (0, 0))
        store.put_bytes(key, data)
        assert path.stat().st_mtime > 0  # refreshed, not rewritten
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial left
    else:
        first = store.modified(key)
        store.put_bytes(key, data)
        assert store.modified(key) == first  # recent: not sent again
    assert list(store.iter_keys()) == [key]
