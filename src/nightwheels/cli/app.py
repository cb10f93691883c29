"""The Typer app: every ``nightwheels`` command (``upload`` runs without it, see ``cli.main``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels import __version__
from nightwheels.cli.common import DataOption, settings_for
from nightwheels.cli.exits import handle_errors

if TYPE_CHECKING:
    from nightwheels.config import Settings
    from nightwheels.services.context import Services

app = typer.Typer(
    help="nightwheels: a nightly wheel index and the CI tools around it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")


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
    from nightwheels.services.context import Services

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
    from nightwheels.server.protocol import MAX_HEAD_BYTES, http_protocol

    settings = settings_for(data)
    settings.data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    check_store(settings)
    uvicorn.run(
        "nightwheels.server.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        http=http_protocol(),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
    )


def check_store(settings: Settings) -> None:
    """Fail before serving when the object store cannot be reached."""
    from nightwheels.storage import open_store

    store = open_store(settings.storage_url, public_url=settings.storage_public_url)
    check = getattr(store, "check", None)
    if check is not None:
        check()


@db_app.command("upgrade")
@handle_errors
def db_upgrade(data: Path | None = DataOption) -> None:
    """Apply all database migrations."""
    from nightwheels.db.migrate import upgrade

    settings = settings_for(data)
    settings.data.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database)
    typer.echo("database is up to date")


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
    from nightwheels.services.audit import SYSTEM
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
FEATURES: tuple[str, ...] = (
    "admin",
    "tokens",
    "access",
    "projects",
    "audit",
    "login",
    "nightly_testing",
    "upload",
    "building",
    "ci",
    "retention",
    "export",
    "migrate",
    "mirror",
    "sessions",
    "alerts",
)


def _register_features() -> None:
    import importlib

    for feature in FEATURES:
        importlib.import_module(f"nightwheels.cli.{feature}").register(app)


_register_features()
