"""The ``nightwheels`` command.

``nightwheels upload`` runs in every nightly CI job, so it goes straight to its own argparse
parser: no typer, click or pydantic, and none of the Typer app's dozens of commands are
built. Every other command runs through the Typer app in :mod:`nightwheels.cli.app`.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:2] == ["upload"]:
        from nightwheels.cli.upload import main as upload
        from nightwheels.cli.upload import show_help, wants_help

        if wants_help(sys.argv[2:]):
            show_help()  # the rich layout of every other command (loads typer: help only)
        sys.exit(upload(sys.argv[2:]))
    if sys.argv[1:2] in (["test"], ["report"]) and sys.argv[2:3] != ["--help"]:
        # The weekly nightly job's commands: their own small app (measured against
        # doing it by hand, building every other command was most of the overhead).
        from nightwheels.cli.nightly_testing import standalone_app

        standalone_app()(prog_name="nightwheels")
        return
    from nightwheels.cli.app import app

    app()
