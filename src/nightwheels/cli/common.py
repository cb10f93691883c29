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


def settings_for(data: Path | None) -> Settings:
    from nightwheels.config import Settings

    if data is not None:
        os.environ["NIGHTWHEELS_DATA"] = str(data)
        return Settings(data=data)
    return Settings()


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
