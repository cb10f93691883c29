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


class _Outage:
    """moto's client, with the store going away after a large upload's first part and
    coming back just after boto3's own abort of it failed (the orphan of issue 19.5)."""

    def __init__(self, client: object) -> None:
        self._client = client
        self.parts = 0
        self.aborts = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)

    def upload_part(self, **kwargs: object) -> object:
        self.parts += 1
        if self.parts > 1:
            raise ConnectionError("the store went away")
        return self._client.upload_part(**kwargs)  # type: ignore[attr-defined]

    def abort_multipart_upload(self, **kwargs: object) -> object:
        self.aborts += 1
        if self.aborts == 1:
            raise ConnectionError("still away")
        return self._client.abort_multipart_upload(**kwargs)  # type: ignore[attr-defined]


def test_a_failed_large_upload_leaves_no_parts_behind(
    tmp_path: Path, moto_s3: MotoS3, bucket: str
) -> None:
    from boto3.s3.transfer import TransferConfig

    client = moto_s3.client()
    outage = _Outage(client)
    # boto3's upload_file is bound to the real client: route it through the faulty one.
    outage.upload_file = lambda path, b, k: client.__class__.upload_file(  # type: ignore[attr-defined]
        outage, path, b, k, Config=TransferConfig(max_concurrency=1)
    )
    store = S3BlobStore(bucket, "p", client=outage)
    key, path = stage(tmp_path, os.urandom(17 * 1024 * 1024))  # three parts
    with pytest.raises(StorageUnavailable):
        store.put_file(key, path)
    assert outage.parts >= 2 and outage.aborts >= 2
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert list(store.incomplete_uploads()) == []


def test_fsck_reports_old_incomplete_uploads_and_repair_aborts_them(
    tmp_path: Path, moto_s3: MotoS3, bucket: str
) -> None:
    from nightwheels.config import Settings
    from nightwheels.db.engine import Database
    from nightwheels.db.migrate import upgrade
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.context import Services
    from nightwheels.services.fsck import fsck

    client = moto_s3.client()
    store = S3BlobStore(bucket, "idx", client=client)
    name = f"idx/{blob_key('ab' * 32)}"  # a process died between two parts
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
    client.upload_part(Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=1, Body=b"x" * 1024)
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/sha256/x")  # not ours
    settings = Settings(data=tmp_path / "data", storage=f"s3://{bucket}/idx")
    settings.data.mkdir()
    upgrade(settings.database)
    services = Services(settings=settings, db=Database(settings.database), store=store)
    try:
        # (moto dates every upload 2010-11-10: old enough; a younger one is in-progress)
        report = fsck(services, SYSTEM)
        (finding,) = report.problems
        assert finding.kind == "incomplete-upload" and finding.subject == name
        assert "billed" in finding.detail
        repaired = fsck(services, SYSTEM, repair=True)
        assert [f.repaired for f in repaired.findings] == ["aborted"]
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert [u["Key"] for u in uploads] == ["elsewhere/sha256/x"]
        assert not fsck(services, SYSTEM, tmp_age=0).findings
    finally:
        services.close()
