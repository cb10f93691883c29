"""A live ``nightwheels serve`` on 127.0.0.1, and the local admin CLI against its data."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.orm import Session

from tests.support.backends import Backend
from tests.support.clients import clean_env

T = TypeVar("T")
_DAYS = timedelta(days=1)


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

    def start(self, *extra: str) -> LiveServer:
        self.port = self.port or free_port()
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
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {log.name}")
            try:
                if httpx.get(f"{self.url}/-/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become healthy in 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``nightwheels ARGS`` on the server machine (same data directory)."""
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

        services = self.backend.services(self.data)
        try:
            upgrade(services.settings.database)
            with services.db.write() as session:
                return fn(session)
        finally:
            services.close()

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


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
