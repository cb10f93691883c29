"""``nightwheels session``: publish, cancel or show an upload session by its name.

The last job of a CI matrix runs ``nightwheels session publish NAME --project P`` after every
job ran ``nightwheels upload --session NAME``. Credentials as for ``upload``: ``--token``,
``NIGHTWHEELS_TOKEN``, or trusted publishing in GitHub Actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from nightwheels.cli.exits import handle_errors

if TYPE_CHECKING:  # imported when a command runs: the CLI starts without them
    from nightwheels.upload.credentials import Credentials
    from nightwheels.upload.sessions import RemoteSession

session_app = typer.Typer(
    help="Upload sessions: publish a night's files all at once.", no_args_is_help=True
)


def _session(server: str | None, token: str | None, project: str, name: str):  # type: ignore[no-untyped-def]
    from nightwheels.upload import credentials, sessions

    creds = credentials.resolve(server, token, project=project)
    return creds, sessions.find_session(creds, project, name)


def _describe(session: object) -> str:
    from nightwheels.upload.sessions import RemoteSession

    assert isinstance(session, RemoteSession)
    files = f"{session.files} file{'' if session.files == 1 else 's'}"
    return f"session {session.name!r} of {session.project} (label {session.label}): {session.state}, {files}"


Action = Callable[["Credentials", "RemoteSession"], list[str]]  # -> the lines to print


def _command(verb: str, action: Action) -> None:
    """``nightwheels session VERB NAME --project P [--server URL] [--token T]``: the one
    parameter set of every session command; ``action``'s docstring is its help."""

    @session_app.command(verb, help=action.__doc__)
    @handle_errors
    def command(
        name: str = typer.Argument(
            ..., metavar="NAME", help="the session's name (as given to upload --session)"
        ),
        project: str = typer.Option(
            ..., "--project", "-p", metavar="PROJECT", help="the session's project"
        ),
        server: str | None = typer.Option(
            None, "--server", metavar="URL", help="server URL (env NIGHTWHEELS_SERVER)"
        ),
        token: str | None = typer.Option(
            None,
            "--token",
            help="upload token (prefer env NIGHTWHEELS_TOKEN); trusted publishing in CI",
        ),
    ) -> None:
        creds, found = _session(server, token, project, name)
        for line in action(creds, found):
            typer.echo(line)

    command.__name__ = f"{verb}_command"


def _publish(creds: Credentials, found: RemoteSession) -> list[str]:
    """Make every file of the session live at once (all of them, or none)."""
    from nightwheels.upload import sessions

    published = sessions.publish(creds, found.id)
    files = f"{found.files} file{'' if found.files == 1 else 's'}"
    return [f"published {files}: " + _describe(published)]


def _cancel(creds: Credentials, found: RemoteSession) -> list[str]:
    """Drop the session and its files; nothing of it is ever listed."""
    from nightwheels.upload import sessions

    return [_describe(sessions.cancel(creds, found.id))]


def _show(creds: Credentials, found: RemoteSession) -> list[str]:
    """The session's state, files, and its preview index URL."""
    return [_describe(found), f"preview: {found.preview_url}"]


_command("publish", _publish)
_command("cancel", _cancel)
_command("show", _show)


def register(app: typer.Typer) -> None:
    app.add_typer(session_app, name="session")
