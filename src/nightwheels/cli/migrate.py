"""``nightwheels migrate-storage``: copy the index to another database and file store."""

from __future__ import annotations

from pathlib import Path

import typer

from nightwheels.cli.common import DataOption
from nightwheels.cli.exits import handle_errors
from nightwheels.core.text import counted


def register(app: typer.Typer) -> None:
    @app.command("migrate-storage")
    @handle_errors
    def migrate_storage(
        to_database: str | None = typer.Option(
            None, "--to-database", help="target database URL (default: SQLite in --to-data)"
        ),
        to_storage: str | None = typer.Option(
            None, "--to-storage", help="target file store: a folder or s3://bucket/prefix"
        ),
        to_data: Path | None = typer.Option(
            None, "--to-data", help="target data directory (for the defaults and staging)"
        ),
        readback: bool = typer.Option(
            True, "--readback/--no-readback", help="read every copied file back and hash it"
        ),
        jobs: int = typer.Option(8, "--jobs", min=1, help="files copied at once"),
        data: Path | None = DataOption,
    ) -> None:
        """Copy this index (settings, or --data) to another database and file store.

        Stop the servers first. Every file's digest is checked on the way; the target
        database must be empty, and stays empty if anything fails.
        """
        from sqlalchemy.engine import make_url

        from nightwheels.cli.common import require_index, settings_for
        from nightwheels.config import Settings
        from nightwheels.db.migrate import upgrade
        from nightwheels.errors import InvalidRequest
        from nightwheels.services.context import Services
        from nightwheels.services.migrate import migrate_index

        source_settings = settings_for(data)
        if not to_database and not to_data:
            raise InvalidRequest("name the target: --to-database URL or --to-data DIR")
        target_settings = Settings(
            data=to_data or source_settings.data,
            database_url=to_database,
            storage=to_storage,
        )
        if target_settings.database == source_settings.database:
            raise InvalidRequest("the target database is the source database")
        require_index(source_settings, data)  # the source exists: never a new, empty one
        target_settings.data.mkdir(parents=True, exist_ok=True)
        upgrade(source_settings.database)
        upgrade(target_settings.database)
        source = Services.from_settings(source_settings)
        target = Services.from_settings(target_settings)
        try:
            result = migrate_index(
                source,
                target,
                readback=readback,
                jobs=jobs,
                progress=lambda m: typer.echo(m, err=True),
            )
        finally:
            source.close()
            target.close()
        shown = make_url(target_settings.database).render_as_string(hide_password=True)
        rows = ", ".join(f"{n} {t}" for t, n in result.rows.items() if n)
        typer.echo(
            f"migrated the index at serial {result.serial} to {shown} + "
            f"{target_settings.storage_url}: {counted(result.blobs_copied, 'file')} copied "
            f"({result.bytes_copied} bytes), {result.blobs_reused} already there, "
            f"all digests verified; rows: {rows}"
        )
        if result.skipped:
            kinds = sorted(set(result.skipped.values()))
            typer.echo(
                f"skipped {len(result.skipped)} files of history whose bytes the source store "
                f"does not have intact ({', '.join(kinds)}; fsck lists them as lost or "
                "quarantined): their rows were copied, downloads of them answer 410 as before",
                err=True,
            )
        if result.orphans_left:
            typer.echo(
                f"left {result.orphans_left} files that no row names (gc removes them) "
                "in the source store",
                err=True,
            )
