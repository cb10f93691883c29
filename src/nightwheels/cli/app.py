"""The Typer app: every ``nightwheels`` command (``upload`` runs without it, see ``cli.main``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels import __version__
from nightwheels.cli import style
from nightwheels.cli.common import DataOption, ProjectArgument, argument, open_index, settings_for
from nightwheels.cli.exits import handle_errors

if TYPE_CHECKING:
    from nightwheels.config import Settings
    from nightwheels.services.context import Services

style.apply()
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
    return open_index(data)


@app.command()
@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, envvar="NIGHTWHEELS_PORT", help="port to listen on"),
    data: Path | None = DataOption,
    workers: int = typer.Option(1, help="server processes"),
    log_level: str = typer.Option("info", help="uvicorn log level"),
) -> None:
    """Run the index server (migrates the database first, if behind)."""
    import uvicorn

    from nightwheels.db.migrate import upgrade_if_behind
    from nightwheels.server.protocol import MAX_HEAD_BYTES, http_protocol

    check_port(host, port)  # before anything is created: a second serve fails cleanly
    settings = settings_for(data)
    make_data_dir(settings.data)
    upgrade_if_behind(settings.database)
    check_store(settings)
    os.environ["NIGHTWHEELS_DATA"] = str(settings.data)  # for the app in each worker
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


def check_port(host: str, port: int) -> None:
    """Fail in one line when ``host:port`` cannot be listened on (in use, not allowed)."""
    import errno
    import socket

    from nightwheels.errors import Misconfigured

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise Misconfigured(f"cannot listen on {host}: {exc.strerror}; check --host") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise Misconfigured(
                    f"port {port} on {host} is in use (another server?): stop it, or pass "
                    "--port with a free port"
                ) from None
            if exc.errno == errno.EACCES:
                raise Misconfigured(
                    f"not allowed to listen on port {port}: pass --port 1024 or above"
                ) from None
            raise Misconfigured(
                f"cannot listen on {host}:{port} ({exc.strerror}): check --host and --port"
            ) from None


def make_data_dir(path: Path) -> None:
    """Create the data directory, or say in one line why it cannot be used."""
    from nightwheels.errors import Misconfigured

    fix = "pass --data (or set NIGHTWHEELS_DATA to) a folder you can write to"
    if path.exists() and not path.is_dir():
        raise Misconfigured(f"the data directory {path} is a file, not a folder: {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror
        if isinstance(exc, FileNotFoundError) and path.parent.is_dir():
            reason = f"{path.parent} does not allow new folders"  # e.g. /proc, /sys
        raise Misconfigured(f"cannot create the data directory {path} ({reason}): {fix}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise Misconfigured(f"the data directory {path} is not writable: {fix}")


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
    make_data_dir(settings.data)
    upgrade(settings.database)
    typer.echo("database is up to date")


@app.command()
@handle_errors
def yank(
    project: str = ProjectArgument,
    version: str | None = argument("version to yank (or --file)", None),
    filename: str | None = typer.Option(None, "--file", help="yank one file"),
    reason: str | None = typer.Option(
        None, "--reason", help="why, shown to installers (PEP 592)", show_default=False
    ),
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


from nightwheels.cli import (  # noqa: E402 - the app above is what they register on
    access,
    admin,
    alerts,
    audit,
    building,
    ci,
    early_warning,
    export,
    login,
    migrate,
    mirror,
    nightly_testing,
    projects,
    retention,
    sessions,
    tokens,
    upload,
)

# Each feature module adds its commands (``register``), in the order help lists them.
for _feature in (
    admin,
    tokens,
    access,
    projects,
    early_warning,
    audit,
    login,
    nightly_testing,
    upload,
    building,
    ci,
    retention,
    export,
    migrate,
    mirror,
    sessions,
    alerts,
):
    _feature.register(app)
