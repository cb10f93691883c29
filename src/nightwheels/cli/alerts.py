"""``nightwheels alerts run``: scan the compatibility record, resolve and deliver upstream
alerts now (the server's maintenance round does the same on its schedule)."""

from __future__ import annotations

from pathlib import Path

import typer

from nightwheels.cli.common import DataOption
from nightwheels.cli.exits import EXIT_ERROR, handle_errors

alerts_app = typer.Typer(
    help="Upstream alerts (local admin, on the server machine).", no_args_is_help=True
)


@alerts_app.command("run")
@handle_errors
def run_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="decide and log, send nothing"),
    data: Path | None = DataOption,
) -> None:
    """Scan for culprit reports, resolve what passes again, deliver to every channel."""
    from nightwheels.cli.remote import local_services
    from nightwheels.services.audit import Actor
    from nightwheels.services.upstream_alerts import run_alerts
    from nightwheels.trackers.alerts import senders_from_settings

    services = local_services(data)
    try:
        result = run_alerts(
            services,
            Actor(name="admin", source="cli"),
            senders_from_settings(services.settings),
            dry_run=dry_run,
        )
    finally:
        services.close()
    for line in result.deliveries:
        typer.echo(line)
    for line in result.errors:
        typer.echo(f"error: {line}", err=True)
    typer.echo(
        f"alerts: {result.opened_or_updated} opened or updated, {result.resolved} resolved, "
        f"{len(result.deliveries)} deliveries, {len(result.errors)} failed"
    )
    if result.errors:
        raise SystemExit(EXIT_ERROR)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
