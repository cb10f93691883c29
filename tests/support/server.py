"""A live server on 127.0.0.1, and the local admin CLI against its data.

Two ways to run it, the same app on a real socket either way:

- in a thread of the test process (the default): uvicorn serving ``create_app`` with the
  protocol and options of ``nightwheels serve``; no interpreter start, no imports, so a
  server costs milliseconds. Real clients (pip, uv, twine, browsers) talk to it as to any.
- as a process, ``python -m nightwheels serve`` (``in_thread=False``): for what only a
  process shows: signals (SIGKILL mid-upload), its memory, its log, several workers, the
  ``serve`` command itself; and always for a server with a maintenance schedule
  (``NIGHTWHEELS_PRUNE_INTERVAL``), whose rounds are spawned children of the server.

A fresh SQLite index starts from a copy of a database migrated once per test process
(``migrated_sqlite``); the server's own migration step then finds nothing to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from sqlalchemy.orm import Session

from tests.support.backends import Backend, migrated_sqlite
from tests.support.clients import clean_env

T = TypeVar("T")
_DAYS = timedelta(days=1)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` is exactly ``env`` inside the block (settings and boto3 read it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    data: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    backend: Backend = field(default_factory=lambda: Backend("sqlite"))
    # Python command that runs the server instead of ``python -m nightwheels`` (benchmarks:
    # an older build's venv, or a script that wraps the CLI with a memory probe).
    command: list[str] = field(default_factory=lambda: [sys.executable, "-m", "nightwheels"])
    # Serve from a thread of this process (see the module docstring); False: a process.
    in_thread: bool = True
    _uvicorn: Any = None
    _thread: threading.Thread | None = None
    _admin: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def upload_url(self) -> str:
        return f"{self.url}/legacy/"

    @property
    def simple_url(self) -> str:
        return f"{self.url}/simple/"

    def _env(self) -> dict[str, str]:
        return clean_env(NIGHTWHEELS_DATA=str(self.data), **{**self.backend.env(), **self.env})

    def _seed_database(self) -> None:
        env = self._env()
        if "NIGHTWHEELS_DATABASE_URL" in env or "NIGHTWHEELS_DATA" not in env:
            return
        target = Path(env["NIGHTWHEELS_DATA"]) / "nightwheels.db"
        if not target.exists() and target.parent.is_dir():
            shutil.copyfile(migrated_sqlite(), target)

    def __enter__(self) -> LiveServer:
        """``with LiveServer(data=...) as server:``: its data folder made, started, stopped
        at the end of the block."""
        self.data.mkdir(exist_ok=True)
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *extra: str) -> LiveServer:
        self.port = self.port or free_port()
        self._seed_database()
        if self.in_thread and not extra and not self._schedules_maintenance():
            return self._start_thread()
        log = open(self.data.parent / f"server-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                *self.command,
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                *extra,
            ],
            env=self._env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/-/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop(signal.SIGKILL)  # not left running behind the failed test
        raise RuntimeError("server did not become healthy in 60 s")

    def _schedules_maintenance(self) -> bool:
        """A server with a maintenance schedule runs as a process: each round is a spawned
        child of the server, which from a thread would start by importing pytest again."""
        return float(self._env().get("NIGHTWHEELS_PRUNE_INTERVAL") or 0) > 0

    def _start_thread(self) -> LiveServer:
        import uvicorn

        from nightwheels.config import Settings
        from nightwheels.db.migrate import upgrade
        from nightwheels.server import protocol
        from nightwheels.server.app import create_app

        with environment(self._env()):
            settings = Settings()
            settings.data.mkdir(parents=True, exist_ok=True)
            upgrade(settings.database)
            protocol.head_timeout.cache_clear()
            protocol.head_timeout()  # this server's setting, read now
            app = create_app(settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="warning",
            proxy_headers=False,
            server_header=False,
            http=protocol.http_protocol(),
            h11_max_incomplete_event_size=protocol.MAX_HEAD_BYTES,
            timeout_graceful_shutdown=5,
        )
        self._uvicorn = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._uvicorn.run, name=f"server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the in-thread server on port {self.port} did not start")
            time.sleep(0.005)
        return self

    @property
    def running(self) -> bool:
        if self._thread is not None:
            return self._thread.is_alive()
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self._thread is not None:
            if sig != signal.SIGTERM:
                raise RuntimeError("signals need a server process: LiveServer(in_thread=False)")
            self._uvicorn.should_exit = True
            self._thread.join(timeout=15)
            self._thread = None
            return
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(
        self, *args: str, check: bool = True, input: str | None = None, real: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``nightwheels ARGS`` on the server machine (same data directory).

        In-process (typer's runner: the same commands, without a second of imports);
        ``real=True`` runs ``python -m nightwheels`` as a process, for the entry point itself.
        """
        if not real:
            return _run_cli_in_process(list(args), self._env(), input=input, check=check)
        result = subprocess.run(
            [sys.executable, "-m", "nightwheels", *args],
            env=self._env(),
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"nightwheels {' '.join(args)} failed:\n{result.stderr}")
        return result

    def admin(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a write transaction on this server's database, in this process.

        What ``nightwheels user create`` and ``token create --user`` do through the same
        services, without a process start per call (the CLI itself is tested on its own).
        """
        from nightwheels.db.migrate import upgrade

        if self._admin is None:
            self._seed_database()
            services = self.backend.services(self.data)
            upgrade(services.settings.database)
            self._admin = services
        with self._admin.db.write() as session:
            return fn(session)

    def create_user(self, name: str, *, admin: bool = False) -> None:
        from nightwheels.services import accounts
        from nightwheels.services.audit import SYSTEM

        self.admin(lambda s: accounts.create_user(s, SYSTEM, name, is_admin=admin))

    def token(self, user: str, *projects: str, expires: str | None = None) -> str:
        """A token for ``user``, as ``nightwheels token create --user`` makes it."""
        from nightwheels.services import accounts
        from nightwheels.services.audit import SYSTEM

        expires_at = datetime.now(UTC) + _DAYS * float(expires.rstrip("d")) if expires else None

        def create(session: Session) -> str:
            return accounts.create_token_as_admin(
                session,
                SYSTEM,
                accounts.get_user(session, user),
                name="upload",
                projects=list(projects),
                permission="upload",
                expires_at=expires_at,
            ).secret

        return self.admin(create)

    def tmp_files(self) -> list[Path]:
        tmp = self.data / "tmp"
        return sorted(tmp.iterdir()) if tmp.exists() else []

    def blobs(self) -> list[Any]:
        """Stored blobs: file paths (embedded default) or object keys (S3)."""
        return self.backend.blobs(self.data)


class ServerFactory(Protocol):
    """The ``live_server`` fixture (tests/conftest.py)."""

    def __call__(
        self,
        *,
        env: dict[str, str] | None = None,
        name: str | None = None,
        backend: Backend | None = None,
        in_thread: bool = True,
        start: bool = True,
    ) -> LiveServer: ...


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def _run_cli_in_process(
    args: list[str], env: dict[str, str], *, input: str | None, check: bool
) -> subprocess.CompletedProcess[str]:
    from typer.testing import CliRunner

    from nightwheels.cli.app import app

    # The runner sets the environment of a process started with ``env`` for the call:
    # variables the clean environment leaves out (PIP_*, NIGHTWHEELS_*, AWS_*) are hidden.
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    result = CliRunner().invoke(app, args, input=input, env=overrides)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    done = subprocess.CompletedProcess(
        ["nightwheels", *args], result.exit_code, result.stdout, result.stderr
    )
    if check and done.returncode != 0:
        raise AssertionError(f"nightwheels {' '.join(args)} failed:\n{done.stderr}")
    return done
