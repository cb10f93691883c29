"""``nightwheels mirror``: copy projects from another index into this one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from nightwheels.cli.common import DataOption
from nightwheels.cli.exits import EXIT_ERROR, handle_errors

if TYPE_CHECKING:
    from nightwheels.services.mirror import MirrorReport


def register(app: typer.Typer) -> None:
    @app.command("mirror")
    @handle_errors
    def mirror_command(
        source: str = typer.Argument(
            ..., metavar="SOURCE_SIMPLE_URL", help="the other index's simple URL (.../simple/)"
        ),
        projects: list[str] = typer.Argument(
            None, metavar="[PROJECT]...", help="projects to copy (default: every listed one)"
        ),
        owner: str = typer.Option(
            ..., "--owner", help="user recorded as uploader and made admin of new projects"
        ),
        versions: int | None = typer.Option(
            None, "--versions", metavar="N", help="copy only the newest N versions per project"
        ),
        label: str = typer.Option("main", "--label", help="label to publish the files in"),
        as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
        data: Path | None = DataOption,
    ) -> None:
        """Copy projects from another PEP 503/691 index (the hosted channel, another
        nightwheels, devpi, a static export) into this one, on the server machine.

        Every file is verified against the sha256 the source lists; upload times (PEP 700)
        and yank marks are kept. Safe to re-run: files already here are not downloaded
        again, so an interrupted mirror resumes where it stopped.
        """
        from nightwheels.cli.remote import local_services, print_json
        from nightwheels.services.mirror import mirror

        services = local_services(data)
        try:
            with _Progress(enabled=not as_json) as progress:
                report = mirror(
                    services,
                    source,
                    projects or [],
                    owner=owner,
                    label=label,
                    versions=versions,
                    on_event=progress.event,
                    on_plan=progress.plan,
                )
        finally:
            services.close()
        if as_json:
            print_json(report.as_dict())
        else:
            _summary(report)
        if not report.ok:
            raise SystemExit(EXIT_ERROR)


class _Progress:
    """A rich progress bar over the files to download (stderr, only on a terminal)."""

    def __init__(self, enabled: bool) -> None:
        import sys

        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        self.task = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("mirroring", total=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def plan(self, files: int) -> None:
        if self.bar is not None and self.task is not None:
            total = self.bar.tasks[0].total or 0
            self.bar.update(self.task, total=total + files)

    def event(self, event: object) -> None:
        from nightwheels.services.mirror import FileEvent

        assert isinstance(event, FileEvent)
        if self.bar is not None and self.task is not None and event.status in ("copied", "failed"):
            self.bar.update(self.task, advance=1, description=f"{event.project}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(report: MirrorReport) -> None:
    for event in report.events:
        if event.status in ("failed", "skipped"):
            where = f"{event.project}/{event.filename}" if event.filename else event.project
            typer.echo(f"{event.status}: {where}: {event.detail}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    mib = report.copied_bytes / 2**20
    typer.echo(
        f"mirrored {_plural(len(report.projects), 'project')} from {report.source} "
        f"into label {report.label!r}: {_plural(report.count('copied'), 'file')} copied "
        f"({mib:.1f} MiB), {report.count('present')} already here, "
        f"{report.count('skipped')} skipped, {report.count('failed')} failed"
    )
