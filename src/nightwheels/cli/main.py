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

        sys.exit(upload(sys.argv[2:]))
    from nightwheels.cli.app import app

    app()
