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
# Statuses 4 and up mean one thing per command:
EXIT_COULD_NOT_RUN = 4  # ``nightwheels test``: pytest could not run the tests
EXIT_NO_NIGHTLIES = 5  # ``nightwheels test``: the index has no nightly of any dependency
EXIT_REFUSED = 4  # ``prune``: the share guard left some projects alone (review, --force)
EXIT_ABORTED = 5  # ``prune``: the fail-safe stopped the run before anything was removed
EXIT_UNAVAILABLE = 6  # ``prune``: the database cannot be reached (try again later)


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
            fail(exc.message, exc.exit_status)
        except OSError as exc:
            fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        except Exception as exc:
            # pydantic and SQLAlchemy errors can only come from a command that loaded them.
            if "pydantic" in sys.modules:
                from pydantic import ValidationError

                if isinstance(exc, ValidationError):
                    fail(settings_error(exc), EXIT_USAGE)
            reason = database_unreachable(exc)
            if reason is not None:
                fail(f"cannot use the database: {reason}")
            raise

    return wrapper  # type: ignore[return-value]


def database_unreachable(exc: BaseException) -> str | None:
    """Why the database cannot be used, if that is what ``exc`` says (else ``None``)."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, OperationalError)
    ):
        return str(exc.orig or exc).strip().splitlines()[0]
    return None


def settings_error(exc: ValidationError) -> str:
    """One line naming the environment variable(s) with a bad value."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        problems.append(f"NIGHTWHEELS_{field.upper()}={error.get('input')!r}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)
