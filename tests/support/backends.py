"""The two server backends every server test runs on.

- ``sqlite``: the embedded default, SQLite and a local folder in the server's data dir;
- ``postgres``: the scale-out configuration, a fresh PostgreSQL database on 127.0.0.1:5432
  (``CREATE DATABASE nw_<uuid>``, dropped afterwards) and a fresh bucket on moto's S3
  server (on a free loopback port, one per test session), used through the real boto3.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

PG_HOST = os.environ.get("NIGHTWHEELS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("NIGHTWHEELS_TEST_PG_PORT", "5432"))
PG_ADMIN_DB = os.environ.get("NIGHTWHEELS_TEST_PG_DB", "test")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# For slow client tests whose PostgreSQL run would add little: pin the ``backend`` fixture.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
POSTGRES_ONLY = pytest.mark.parametrize("backend", [BACKENDS[1]], indirect=True)
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@cache
def pg_user() -> str:
    """The first of ``postgres`` and the OS user that can connect (trust auth)."""
    import psycopg

    errors = []
    for user in dict.fromkeys(["postgres", getpass.getuser()]):
        try:
            with psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname=PG_ADMIN_DB, connect_timeout=5
            ):
                return user
        except psycopg.Error as exc:
            errors.append(f"{user}: {exc}")
    raise RuntimeError(
        f"PostgreSQL at {PG_HOST}:{PG_PORT} is not reachable ({'; '.join(errors)}); "
        'deselect these tests with -m "not postgres"'
    )


def pg_url(database: str) -> str:
    return f"postgresql+psycopg://{pg_user()}@{PG_HOST}:{PG_PORT}/{database}"


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=pg_user(), dbname=PG_ADMIN_DB, autocommit=True
    ) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@cache
def _schema_digest() -> str:
    """A digest of the migration files: the name of a template at the newest schema."""
    import hashlib

    import nightwheels.db.migrations as migrations

    versions = sorted((Path(migrations.__file__).parent / "versions").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in versions))
    return digest.hexdigest()[:16]


@cache
def migrated_sqlite() -> Path:
    """An empty index database at the newest schema, to copy from: one per schema, shared by
    every test process and run (built in a folder of its own and renamed into place when
    complete; one folder per process was left behind in the temporary folder by every run)."""
    from nightwheels.db.migrate import upgrade

    final = Path(tempfile.gettempdir()) / f"nw-sqlite-template-{_schema_digest()}"
    path = final / "nightwheels.db"
    if path.exists():
        return path
    building = Path(tempfile.mkdtemp(prefix="nw-sqlite-building-"))
    try:
        upgrade(f"sqlite:///{building / 'nightwheels.db'}")
        with sqlite3.connect(building / "nightwheels.db") as conn:  # one self-contained file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("PRAGMA journal_mode=DELETE")
        try:
            building.rename(final)
        except OSError:
            if not path.exists():  # not a concurrent builder that finished first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return path


@cache
def _migrated_template() -> str:
    """A database at the newest schema, to copy from: one per schema, shared by every test
    process and run (named by a digest of the migration files; built under a temporary name
    and renamed when complete, so a run killed while building it leaves nothing usable)."""
    from nightwheels.db.migrate import upgrade

    name = f"nw_template_{_schema_digest()}"
    if not _pg_exists(name):
        building = f"nw_building_{uuid.uuid4().hex[:12]}"
        _pg_admin(f"CREATE DATABASE {building}")
        try:
            upgrade(pg_url(building))  # its engine uses no pool: no connection stays open
            _pg_admin(f"ALTER DATABASE {building} RENAME TO {name}")
        except Exception:
            if not _pg_exists(name):  # not a concurrent builder that finished first
                raise
        finally:
            _pg_admin(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
    return name


def _pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=pg_user(), dbname=PG_ADMIN_DB, autocommit=True
    ) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return found is not None


@contextmanager
def fresh_database(*, migrated: bool = False) -> Iterator[str]:
    """A new PostgreSQL database, empty or (``migrated``) at the newest schema; dropped
    (with its connections) afterwards.

    A migrated one is a copy of a template migrated once per test process: a copy takes
    tens of milliseconds where running every migration takes seconds.
    """
    name = f"nw_{uuid.uuid4().hex[:16]}"
    template = f" TEMPLATE {_migrated_template()}" if migrated else ""
    _pg_admin(f"CREATE DATABASE {name}{template}")
    try:
        yield pg_url(name)
    finally:
        _pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class MotoS3:
    """moto's S3 server on a free loopback port, as its own process."""

    def __init__(self, log_dir: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._client: Any = None
        self._log = open(log_dir / "moto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.05)

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, **S3_CREDENTIALS}

    def client(self) -> Any:
        """The tests' S3 client, made once: boto3 takes 0.2 s of CPU to make one (it loads the
        service's model), which every bucket, listing and check paid again. Clients are
        thread-safe."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3",
                config=Config(signature_version="s3v4"),
                endpoint_url=self.endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._client

    @contextmanager
    def fresh_bucket(self) -> Iterator[str]:
        name = f"nw-{uuid.uuid4().hex[:16]}"
        client = self.client()
        client.create_bucket(Bucket=name)
        try:
            yield name
        finally:
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=name):
                for item in page.get("Contents", []):
                    client.delete_object(Bucket=name, Key=item["Key"])
            client.delete_bucket(Bucket=name)

    def make_public(self, bucket: str) -> None:
        """Anyone may GET objects (a public bucket, as behind a CDN)."""
        import json

        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@dataclass
class Backend:
    name: str
    database_url: str | None = None
    bucket: str | None = None
    prefix: str = "blobs"
    s3: MotoS3 | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def storage(self) -> str | None:
        return f"s3://{self.bucket}/{self.prefix}" if self.bucket else None

    def env(self) -> dict[str, str]:
        env = dict(self.extra_env)
        if self.database_url:
            env["NIGHTWHEELS_DATABASE_URL"] = self.database_url
        if self.storage and self.s3:
            env["NIGHTWHEELS_STORAGE"] = self.storage
            env.update(self.s3.env)
        return env

    def blobs(self, data: Path) -> list[Any]:
        """Every stored blob: paths under the data dir's folder, or keys in the bucket."""
        if self.bucket and self.s3:
            client = self.s3.client()
            keys: list[PurePosixPath] = []
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + "/"
            ):
                keys += [PurePosixPath(item["Key"]) for item in page.get("Contents", [])]
            return sorted(keys)
        root = data / "files"
        return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []

    def services(self, data: Path) -> Any:
        """The index's services in this process (for checks behind the server's back)."""
        from nightwheels.config import Settings
        from nightwheels.db.engine import Database
        from nightwheels.services.context import Services
        from nightwheels.storage import open_store
        from nightwheels.storage.s3 import S3BlobStore

        settings = Settings(data=data, database_url=self.database_url, storage=self.storage)
        if self.bucket and self.s3:
            store: Any = S3BlobStore(self.bucket, self.prefix, client=self.s3.client())
        else:
            store = open_store(settings.storage_url)
        return Services(settings=settings, db=Database(settings.database), store=store)


@contextmanager
def open_backend(request: pytest.FixtureRequest, name: str | None = None) -> Iterator[Backend]:
    """The backend named by the fixture's parameter (or ``name``), created fresh."""
    name = name or request.param
    if name == "sqlite":
        yield Backend("sqlite")
        return
    if name != "postgres":
        raise ValueError(name)
    s3: MotoS3 = request.getfixturevalue("moto_s3")
    with fresh_database(migrated=True) as url, s3.fresh_bucket() as bucket:
        yield Backend("postgres", database_url=url, bucket=bucket, s3=s3)
