"""``nightwheels session``: publish, cancel or show an upload session by its name.

The last job of a CI matrix runs ``nightwheels session publish NAME --project P`` after every
job ran ``nightwheels upload --session NAME``. Credentials as for ``upload``: ``--token``,
``NIGHTWHEELS_TOKEN``, or trusted publishing in GitHub Actions.
"""

from __future__ import annotations

import typer

from nightwheels.cli.exits import handle_errors

session_app = typer.Typer(
    help="Upload sessions: publish a night's files all at once.", no_args_is_help=True
)

ServerOption = typer.Option(
    None, "--server", metavar="URL", help="server URL (env NIGHTWHEELS_SERVER)"
)
TokenOption = typer.Option(
    None, "--token", help="upload token (prefer env NIGHTWHEELS_TOKEN); trusted publishing in CI"
)
ProjectOption = typer.Option(
    ..., "--project", "-p", metavar="PROJECT", help="the session's project"
)
NameArgument = typer.Argument(
    ..., metavar="NAME", help="the session's name (as given to upload --session)"
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


@session_app.command("publish")
@handle_errors
def publish_command(
    name: str = NameArgument,
    project: str = ProjectOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Make every file of the session live at once (all of them, or none)."""
    from nightwheels.upload import sessions

    creds, found = _session(server, token, project, name)
    published = sessions.publish(creds, found.id)
    typer.echo(
        f"published {found.files} file{'' if found.files == 1 else 's'}: " + _describe(published)
    )


@session_app.command("cancel")
@handle_errors
def cancel_command(
    name: str = NameArgument,
    project: str = ProjectOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """Drop the session and its files; nothing of it is ever listed."""
    from nightwheels.upload import sessions

    creds, found = _session(server, token, project, name)
    typer.echo(_describe(sessions.cancel(creds, found.id)))


@session_app.command("show")
@handle_errors
def show_command(
    name: str = NameArgument,
    project: str = ProjectOption,
    server: str | None = ServerOption,
    token: str | None = TokenOption,
) -> None:
    """The session's state, files, and its preview index URL."""
    _, found = _session(server, token, project, name)
    typer.echo(_describe(found))
    typer.echo(f"preview: {found.preview_url}")


def register(app: typer.Typer) -> None:
    app.add_typer(session_app, name="session")
