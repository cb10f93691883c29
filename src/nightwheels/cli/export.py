"""``nightwheels export-static``: the read path as static files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels.cli.common import DataOption
from nightwheels.cli.exits import handle_errors
from nightwheels.core.text import counted

if TYPE_CHECKING:
    from nightwheels.services.export import ExportResult


def register(app: typer.Typer) -> None:
    @app.command("export-static")
    @handle_errors
    def export_static_command(
        dest: str = typer.Argument(..., help="a folder, or s3://bucket/prefix"),
        full: bool = typer.Option(False, "--full", help="render every project again"),
        files_url: str | None = typer.Option(
            None,
            "--files-url",
            help="link files at URL/files/... instead of copying them into the export",
        ),
        watch: bool = typer.Option(False, "--watch", help="keep the export current"),
        interval: float = typer.Option(1.0, "--interval", help="seconds between checks"),
        data: Path | None = DataOption,
    ) -> None:
        """Write the simple pages, metadata and wheels to DEST for a static host or CDN.

        Incremental: only projects changed since the last export are written again.
        """
        from nightwheels.cli.app import _services
        from nightwheels.services.export import ExportWatcher, export_static
        from nightwheels.storage.static import open_target

        services = _services(data)
        target = open_target(dest)
        result = export_static(services, target, full=full, files_url=files_url)
        _report(result)
        if not watch:
            return
        watcher = ExportWatcher(services, target, interval=interval, files_url=files_url)
        try:
            while True:
                result = watcher.tick()
                if result is not None and not result.unchanged:
                    _report(result)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass


def _report(result: ExportResult) -> None:
    if result.unchanged:
        typer.echo(f"{result.destination} is up to date (serial {result.serial})")
        return
    typer.echo(
        f"exported serial {result.serial} to {result.destination}: "
        f"{result.pages} project pages written, {result.removed} removed, "
        f"{counted(result.files, 'file')} copied"
        + (
            f", {counted(result.withheld, 'file')} of quarantined projects deleted"
            if result.withheld
            else ""
        )
    )
