"""Run the ``nightwheels`` CLI in-process (typer's runner), as a remote user or a local admin.

The commands are the real ones; remote ones talk HTTP to the live server. In-process runs
cost milliseconds where a subprocess costs a second of imports; the console entry point
itself is exercised by the subprocess calls in ``LiveServer.cli``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from nightwheels.cli.app import app
from tests.support import clients
from tests.support.server import LiveServer


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    def __init__(self, server: LiveServer, token: str | None = None, *, remote: bool = True):
        backend = server.backend.env()  # the server's database and store, on any backend
        self.env: dict[str, str | None] = {
            **backend,
            "NIGHTWHEELS_DATA": str(server.data),
            "NIGHTWHEELS_DATABASE_URL": backend.get("NIGHTWHEELS_DATABASE_URL"),
            "NIGHTWHEELS_STORAGE": backend.get("NIGHTWHEELS_STORAGE"),
            "NIGHTWHEELS_SERVER": server.url if remote else None,
            "NIGHTWHEELS_TOKEN": token,
        }

    def __call__(self, *args: str, input: str | None = None, check: bool = True) -> Outcome:
        result = CliRunner().invoke(app, list(args), input=input, env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        outcome = Outcome(result.exit_code, result.stdout, result.stderr)
        if check and outcome.returncode != 0:
            raise AssertionError(f"nightwheels {' '.join(args)} failed:\n{outcome.stderr}")
        return outcome


# Environment variables that change the client tools' behaviour: scrubbed unless a test sets
# them (this machine's, and CI's own, e.g. CI and GITHUB_ACTIONS).
_SCRUB = ("NIGHTWHEELS_", "GITHUB_", "ACTIONS_", "CI")


def nightwheels(*args: str, cwd: Path | None = None, real: bool = False, **env: str) -> Outcome:
    """``nightwheels ARGS`` with ``env`` added to a scrubbed environment.

    In-process by default; ``real=True`` runs the installed command as a process (for what
    only a process shows: output of child processes, signals, the entry point itself).
    """
    if real:
        done = subprocess.run(
            [sys.executable, "-m", "nightwheels", *args],
            env=clients.clean_env(**env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=180,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)
    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith(_SCRUB)}
    overrides.update(env)
    previous = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), env=overrides, catch_exceptions=False)
    finally:
        os.chdir(previous)
    return Outcome(result.exit_code, result.stdout, result.stderr)
