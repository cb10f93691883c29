"""Shared plumbing of the Typer commands: settings from options, durations, ``--data``.

Imports here stay light (no SQLAlchemy, no pydantic): every Typer command loads this module.
Errors and exit codes are in :mod:`nightwheels.cli.exits`, which ``nightwheels upload`` uses
without typer.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from nightwheels.config import Settings
    from nightwheels.services.context import Services


def settings_for(data: Path | None) -> Settings:
    from nightwheels.config import Settings

    if data is not None:
        return Settings(data=data)
    return Settings()


def _where(data: Path | None, settings: Settings) -> str:
    """Where the data directory came from, for an error message."""
    if data is not None:
        how = "--data"
    elif os.environ.get("NIGHTWHEELS_DATA"):
        how = "NIGHTWHEELS_DATA"
    else:
        how = "the default, ./nightwheels-data in the current folder"
    return f"{settings.data.resolve()} ({how})"


def require_index(settings: Settings, data: Path | None = None) -> None:
    """Fail in one line when there is no index where the settings point (never create one).

    An admin command run from another folder would otherwise make a second, empty index
    there, and tokens made in it are refused by the running server.
    """
    from nightwheels.errors import Misconfigured

    fix = (
        "run this on the server machine with --data DIR or NIGHTWHEELS_DATA set to the "
        "server's data directory (nightwheels serve creates one)"
    )
    if settings.database_url is None:
        if not (settings.data / "nightwheels.db").is_file():
            raise Misconfigured(f"no nightwheels index at {_where(data, settings)}: {fix}")
        return
    from nightwheels.db.migrate import database_revisions

    if not database_revisions(settings.database):
        raise Misconfigured(
            "no nightwheels index in the database at NIGHTWHEELS_DATABASE_URL: point it at "
            "the server's database (nightwheels serve or db upgrade creates the tables)"
        )


def open_index(data: Path | None) -> Services:
    """Services on the existing index (``--data`` or the settings), its schema at head."""
    from nightwheels.db.migrate import upgrade_if_behind
    from nightwheels.services.context import Services

    settings = settings_for(data)
    require_index(settings, data)
    upgrade_if_behind(settings.database)
    return Services.from_settings(settings, create=False)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` or a number of days."""
    units = {"d": "days", "h": "hours", "m": "minutes", "w": "weeks"}
    text = text.strip().lower()
    try:
        if text[-1:] in units:
            return timedelta(**{units[text[-1]]: float(text[:-1])})
        return timedelta(days=float(text))
    except (ValueError, IndexError):
        raise typer.BadParameter(f"{text!r} is not a duration like 90d, 12h or 30m") from None


DataOption = typer.Option(
    None, "--data", help="data directory (env NIGHTWHEELS_DATA)", show_default=False
)


def argument(help: str, default: object = ...) -> object:
    """A positional argument with help (``tests/test_cli_help.py`` requires it everywhere)."""
    return typer.Argument(default, help=help, show_default=False)


ProjectArgument = argument("project name")
UserArgument = argument("user name")
