"""Run the ``nightwheels`` CLI in-process (typer's runner), as a remote user or a local admin.

The commands are the real ones; remote ones talk HTTP to the live server. In-process runs
cost milliseconds where a subprocess costs a second of imports; the console entry point
itself is exercised by the subprocess calls in ``LiveServer.cli``.
"""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from nightwheels.cli.main import app
from tests.support.server import LiveServer


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


class Cli:
    def __init__(self, server: LiveServer, token: str | None = None, *, remote: bool = True):
        self.env: dict[str, str | None] = {
            "NIGHTWHEELS_DATA": str(server.data),
            "NIGHTWHEELS_DATABASE_URL": None,
            "NIGHTWHEELS_STORAGE": None,
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
