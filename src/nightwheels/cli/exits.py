"""Errors as one line and an exit code, for every command.

No typer here: ``nightwheels upload`` parses its own arguments (argparse) and never loads it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from nightwheels.errors import NightwheelsError

if TYPE_CHECKING:
    from pydantic import ValidationError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
EXIT_ERROR = 1  # the command failed (``nightwheels test``: the tests failed)
EXIT_USAGE = 2  # bad arguments or settings
EXIT_INSTALL = 3  # ``nightwheels test``: the nightlies could not be installed


def echo(message: str, *, err: bool = False) -> None:
    """A line to stdout (or stderr), flushed at once, so CI logs keep the two in order."""
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    echo(f"error: {message}", err=True)
    raise SystemExit(code)


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
