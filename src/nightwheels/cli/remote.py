"""Plumbing for CLI commands that talk to a server's JSON API, or act locally.

The rule, for commands that can do both (``token``, ``audit``): with ``--data`` they act on
that data directory (on the server machine, as its administrator); otherwise with a server
(``--server`` or ``NIGHTWHEELS_SERVER``) they call its API with ``NIGHTWHEELS_TOKEN``;
with neither, they act on the default data directory.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import typer

from nightwheels.cli.common import open_index
from nightwheels.client.api import ApiClient, ClientConfigError, server_from, token_from

if TYPE_CHECKING:
    from nightwheels.services.context import Services

ServerOption = typer.Option(
    None, "--server", help="server URL (env NIGHTWHEELS_SERVER)", show_default=False
)
JsonOption = typer.Option(False, "--json", help="print JSON")


def segment(value: str) -> str:
    """A path segment for the API URL (user and project names are quoted)."""
    return quote(value, safe="")


def is_remote(server: str | None, data: Path | None = None) -> bool:
    return data is None and server_from(server) is not None


def client(server: str | None, *, need_token: bool = True) -> ApiClient:
    url = server_from(server)
    if url is None:
        raise ClientConfigError("no server given: pass --server URL or set NIGHTWHEELS_SERVER")
    token = token_from()
    if need_token and token is None:
        raise ClientConfigError(
            "no token: set NIGHTWHEELS_TOKEN to a manage token (nightwheels login prints one)"
        )
    return ApiClient(url, token)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=_default))


def local_services(data: Path | None) -> Services:
    """Services on the local index (never a new one), for the server machine's admin."""
    return open_index(data)


def when(value: str | datetime | None) -> str:
    """A timestamp for tables: minutes, UTC."""
    if value is None:
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return f"{value:%Y-%m-%d %H:%M}"


def table(rows: list[list[str]], headers: list[str]) -> None:
    """Plain aligned columns (stable for scripts and tests; rich is for progress bars)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    for line in [headers, *rows]:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def note(message: str) -> None:
    typer.echo(message, err=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
