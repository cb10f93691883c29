"""``nightwheels audit``: the audit log, from the API or the local database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nightwheels.cli.common import DataOption
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import (
    JsonOption,
    ServerOption,
    client,
    is_remote,
    local_services,
    note,
    print_json,
    table,
    when,
)


def _local_page(
    data: Path | None,
    project: str | None,
    action: str | None,
    actor: str | None,
    before: int | None,
    limit: int,
) -> dict[str, Any]:
    from nightwheels.core.names import normalize_name
    from nightwheels.services import audit

    services = local_services(data)
    try:
        with services.db.read() as session:
            events = audit.list_events(
                session,
                audit.EventQuery(
                    project=normalize_name(project) if project else None,
                    action=action,
                    actor=actor,
                    before=before,
                    limit=limit,
                ),
            )
            rows = [audit.event_dict(e) for e in events]
    finally:
        services.close()
    return {"events": rows, "next_before": rows[-1]["id"] if len(rows) == limit else None}


def audit_command(
    project: str | None = typer.Option(None, "--project", help="only this project's events"),
    action: str | None = typer.Option(
        None, "--action", help="an action (file.replace) or prefix (token.)"
    ),
    actor: str | None = typer.Option(None, "--actor", help="only this actor's events"),
    before: int | None = typer.Option(None, "--before", help="page: events older than this id"),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="events to show"),
    server: str | None = ServerOption,
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Show the audit log, newest first (site admins: all; project admins: --project)."""
    if is_remote(server, data):
        with client(server) as api:
            page = api.get(
                "/audit", project=project, action=action, actor=actor, before=before, limit=limit
            )
    else:
        page = _local_page(data, project, action, actor, before, limit)
    if as_json:
        print_json(page)
        return
    table(
        [
            [
                str(e["id"]),
                when(e["at"]),
                e["actor"] or "-",
                e["action"],
                e["project"] or "-",
                e["target"] or "-",
                e["source"] or "-",
            ]
            for e in page["events"]
        ],
        ["ID", "AT", "ACTOR", "ACTION", "PROJECT", "TARGET", "SOURCE"],
    )
    if page["next_before"]:
        note(f"more: --before {page['next_before']}")


def register(app: typer.Typer) -> None:
    app.command("audit")(handle_errors(audit_command))
