"""argparse for the commands every CI job runs (``upload``, ``test``, ``report``).

They parse their own arguments, so that starting one loads no typer, click, rich or
pydantic: typer builds a pydantic ``TypeAdapter`` for each option it parses, and importing
and running that was most of the start-up of ``nightwheels upload`` and ``nightwheels
test`` (``benchmarks/startup.py``, ``benchmarks/nightly_testing.py``). Their ``--help`` is
still rendered by typer, from the same parser, so it reads like every other command's and
the two cannot drift apart.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn

from nightwheels.cli.exits import EXIT_USAGE, fail

if TYPE_CHECKING:
    import typer

__all__ = ["Parser", "float_from", "int_in", "show_help", "typer_help", "wants_help"]


class Parser(argparse.ArgumentParser):
    """Usage errors as one line, ``error: ...``, and exit 2, like every other command."""

    def error(self, message: str) -> NoReturn:
        fail(message, EXIT_USAGE)


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An ``int`` option's type: ``low <= x`` (``<= high``), in typer's words when not."""
    bounds = f"{low}<=x<={high}" if high is not None else f"x>={low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is not in the range {bounds}")
        return value

    return parse


def float_from(low: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid number") from None
        if not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{value} is not in the range x>={low}")
        return value

    return parse


def wants_help(argv: Sequence[str]) -> bool:
    """``-h``/``--help`` before any ``--`` (after it, the arguments are someone else's)."""
    head = list(argv)[: list(argv).index("--")] if "--" in argv else argv
    return any(arg in ("-h", "--help") for arg in head)


def typer_help(parser: argparse.ArgumentParser, name: str, text: str) -> typer.Typer:
    """A Typer app whose command ``name`` has the parser's arguments, to show its help.

    It only shows help: the arguments are parsed by argparse either way.
    """
    import inspect

    import typer
    from rich.markup import escape

    formatter = parser._get_formatter()
    parameters = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        shown = escape(formatter._expand_help(action))  # "[default: 8]" is not markup
        if not action.option_strings:
            info: object = typer.Argument(None, help=shown, metavar=action.metavar)
            annotation: object = list[str] | None if action.nargs == "*" else str | None
        elif action.nargs == 0:  # a flag
            info, annotation = typer.Option(False, *action.option_strings, help=shown), bool
        else:
            info = typer.Option(None, *action.option_strings, help=shown, metavar=action.metavar)
            repeatable = isinstance(action, argparse._AppendAction)
            annotation = list[str] | None if repeatable else str | None
        parameters.append(
            inspect.Parameter(
                action.dest, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation
            )
        )

    def command_help(**_: object) -> None:
        pass

    command_help.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command_help.__annotations__ = {p.name: p.annotation for p in parameters}
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command(name, help=escape(text))(command_help)
    app.command("_")(command_help)  # two commands: the help names the subcommand
    return app


def show_help(parser: argparse.ArgumentParser, name: str, text: str) -> NoReturn:
    """``nightwheels NAME --help``, in the layout of every other command."""
    import typer

    from nightwheels.cli import style

    style.apply()
    typer.main.get_command(typer_help(parser, name, text))(
        [name, "--help"], prog_name="nightwheels"
    )
    raise SystemExit(0)  # the line above exits after the help; this only reassures the types
