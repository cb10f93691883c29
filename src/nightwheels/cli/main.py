"""The ``nightwheels`` command.

The commands every CI job runs go straight to their own argparse parsers: ``upload`` (every
nightly build), ``test`` and ``report`` (every nightly test run). No typer, click, rich or
pydantic is loaded, and none of the Typer app's dozens of commands are built; their
``--help`` alone loads typer. Every other command runs through the Typer app in
:mod:`nightwheels.cli.app`.
"""

from __future__ import annotations

import sys


def main() -> None:
    command, argv = sys.argv[1:2], sys.argv[2:]
    if command == ["upload"]:
        from nightwheels.cli.upload import main as upload
        from nightwheels.cli.upload import show_help, wants_help

        if wants_help(argv):
            show_help()  # the rich layout of every other command (loads typer: help only)
        sys.exit(upload(argv))
    if command in (["test"], ["report"]):
        # Measured against doing it by hand (benchmarks/nightly_testing.py): building the
        # Typer app, and typer's pydantic coercion of each option, were most of the overhead.
        from nightwheels.cli import nightly_testing as nt
        from nightwheels.cli.parsing import wants_help

        if command == ["test"]:
            if wants_help(argv):
                nt.show_test_help()
            sys.exit(nt.main_test(argv))
        if wants_help(argv):
            nt.show_report_help()
        sys.exit(nt.main_report(argv))
    from nightwheels.cli.app import app

    app()
