"""Shared CLI plumbing: settings from options, errors as one line and an exit code.

Imports here stay light (no SQLAlchemy, no pydantic): every command loads this module, and
client commands such as ``nightwheels upload`` never touch a database.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from nightwheels.errors import NightwheelsError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from nightwheels.config import Settings

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
        except Exception as exc:
            # pydantic and SQLAlchemy errors can only come from a command that loaded them.
            if "pydantic" in sys.modules:
                from pydantic import ValidationError

                if isinstance(exc, ValidationError):
                    fail(settings_error(exc), EXIT_USAGE)
            if "sqlalchemy" in sys.modules:
                from sqlalchemy.exc import DBAPIError, OperationalError

                if isinstance(exc, DBAPIError) and (
                    exc.connection_invalidated or isinstance(exc, OperationalError)
                ):
                    reason = str(exc.orig or exc).strip().splitlines()[0]
                    fail(f"cannot use the database: {reason}")
            raise

    return wrapper  # type: ignore[return-value]


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable(s) with a bad value."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        problems.append(f"NIGHTWHEELS_{field.upper()}={error.get('input')!r}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)


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


def is_ci() -> bool:
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()


DataOption = typer.Option(
    None, "--data", help="data directory (env NIGHTWHEELS_DATA)", show_default=False
)
