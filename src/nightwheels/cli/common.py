"""Shared CLI plumbing: settings from options, errors as one line and an exit code."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from nightwheels.config import Settings
from nightwheels.errors import NightwheelsError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_ERROR) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn a user-actionable error into ``error: <message>`` and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NightwheelsError as exc:
            fail(exc.message)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except ValidationError as exc:
            fail(settings_error(exc), EXIT_USAGE)
        except DBAPIError as exc:
            if not exc.connection_invalidated and not isinstance(exc, OperationalError):
                raise
            reason = str(exc.orig or exc).strip().splitlines()[0]
            fail(f"cannot use the database: {reason}")

    return wrapper  # type: ignore[return-value]


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable(s) with a bad value."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        problems.append(f"NIGHTWHEELS_{field.upper()}={error.get('input')!r}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)


def settings_for(data: Path | None) -> Settings:
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


def is_ci() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


DataOption = typer.Option(
    None, "--data", help="data directory (env NIGHTWHEELS_DATA)", show_default=False
)
