"""The ``nightwheels`` command."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from nightwheels import __version__
from nightwheels.cli.common import DataOption, handle_errors, parse_duration, settings_for
from nightwheels.core.permissions import Role
from nightwheels.services import accounts
from nightwheels.services.audit import SYSTEM
from nightwheels.services.auth import user_role
from nightwheels.services.context import Services

app = typer.Typer(
    help="nightwheels: a nightly wheel index and the CI tools around it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
user_app = typer.Typer(
    help="User accounts (local admin, on the server machine).", no_args_is_help=True
)
token_app = typer.Typer(
    help="API tokens (local admin, on the server machine).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"nightwheels {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="show the version"
    ),
) -> None:
    """nightwheels: a nightly wheel index and the CI tools around it."""


def _services(data: Path | None) -> Services:
    from nightwheels.db.migrate import upgrade

    settings = settings_for(data)
    services = Services.from_settings(settings)
    upgrade(settings.database)
    return services


@app.command()
@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    data: Path | None = DataOption,
    workers: int = typer.Option(1, help="server processes"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Run the index server (migrates the database first)."""
    import uvicorn

    from nightwheels.db.migrate import upgrade

    settings = settings_for(data)
    settings.data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    uvicorn.run(
        "nightwheels.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
    )


@db_app.command("upgrade")
@handle_errors
def db_upgrade(data: Path | None = DataOption) -> None:
    """Apply all database migrations."""
    from nightwheels.db.migrate import upgrade

    settings = settings_for(data)
    settings.data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    typer.echo("database is up to date")


@user_app.command("create")
@handle_errors
def user_create(
    name: str,
    admin: bool = typer.Option(False, "--admin", help="make a site admin"),
    email: str | None = typer.Option(None),
    organisation: str | None = typer.Option(None),
    data: Path | None = DataOption,
) -> None:
    """Create a user."""
    services = _services(data)
    with services.db.write() as session:
        accounts.create_user(
            session, SYSTEM, name, email=email, organisation=organisation, is_admin=admin
        )
    typer.echo(f"created user {name}{' (site admin)' if admin else ''}")


@token_app.command("create")
@handle_errors
def token_create(
    user: str = typer.Option(..., "--user", help="the token's owner"),
    project: list[str] = typer.Option(..., "--project", help="project the token may upload to"),
    name: str = typer.Option("upload", "--name", help="a name to recognise the token by"),
    expires: str | None = typer.Option(None, "--expires", help="lifetime, e.g. 90d"),
    data: Path | None = DataOption,
) -> None:
    """Create an upload token for USER scoped to PROJECT(s); prints it once.

    Run on the server machine by its administrator: the user is made a member
    (uploader) of each named project, which is created if new.
    """
    services = _services(data)
    expires_at = datetime.now(UTC) + parse_duration(expires) if expires else None
    with services.db.write() as session:
        owner = accounts.get_user(session, user)
        for p in project:
            proj = accounts.get_or_create_project(session, SYSTEM, p)
            if user_role(session, owner.id, proj.id) is None:
                accounts.set_role(session, SYSTEM, owner, proj, Role.UPLOADER)
        created = accounts.create_token(
            session, SYSTEM, owner, name=name, projects=project, expires_at=expires_at
        )
    typer.echo(created.secret)
    typer.echo(
        f"token {created.name!r} (prefix {created.prefix}) for {user}, upload to "
        f"{', '.join(created.projects or [])}: store it now, it is not shown again",
        err=True,
    )


@token_app.command("revoke")
@handle_errors
def token_revoke(prefix: str, data: Path | None = DataOption) -> None:
    """Revoke a token by its prefix (effective immediately)."""
    services = _services(data)
    with services.db.write() as session:
        accounts.revoke_token(session, SYSTEM, prefix)
    typer.echo(f"revoked token {prefix}")


@app.command()
@handle_errors
def yank(
    project: str,
    version: str | None = typer.Argument(None),
    filename: str | None = typer.Option(None, "--file", help="yank one file"),
    reason: str | None = typer.Option(None, "--reason"),
    undo: bool = typer.Option(False, "--undo", help="un-yank"),
    data: Path | None = DataOption,
) -> None:
    """Yank a version (or one file) of PROJECT (PEP 592)."""
    from nightwheels.errors import InvalidRequest
    from nightwheels.services.yank import set_yanked

    if not version and not filename:
        raise InvalidRequest("name a VERSION or a --file to yank")
    services = _services(data)
    names = set_yanked(
        services,
        SYSTEM,
        project,
        version=version,
        filename=filename,
        yanked=not undo,
        reason=reason,
    )
    verb = "un-yanked" if undo else "yanked"
    for n in names:
        typer.echo(f"{verb} {n}")


# Feature modules under nightwheels.cli, each with ``register(app: typer.Typer)``.
FEATURES: tuple[str, ...] = ()


def _register_features() -> None:
    import importlib

    for feature in FEATURES:
        importlib.import_module(f"nightwheels.cli.{feature}").register(app)


_register_features()


def main() -> None:
    app()
