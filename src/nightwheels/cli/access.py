"""``nightwheels access ...``: reviewed requests for upload access to a project (API)."""

from __future__ import annotations

from typing import Any

import typer

from nightwheels.cli.common import ProjectArgument, argument
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import JsonOption, ServerOption, client, print_json, table, when

access_app = typer.Typer(
    help="Request upload access to a project; site admins review requests.",
    no_args_is_help=True,
)


RequestArgument = argument("access request number")


def _show(req: dict[str, Any]) -> None:
    org = f" ({req['requester_organisation']})" if req.get("requester_organisation") else ""
    new = "" if req["project_exists"] else " (new project)"
    typer.echo(f"request #{req['id']}: {req['project']}{new} - {req['status']}")
    typer.echo(f"  requester: {req['requester']}{org}, filed {when(req['created_at'])}")
    if req.get("repository_url"):
        typer.echo(f"  repository: {req['repository_url']}")
    typer.echo(f"  reason: {req['reason']}")
    for c in req.get("comments", []):
        typer.echo(f"  [{when(c['at'])}] {c['author']}: {c['body']}")
    if req.get("decided_at"):
        by = f" by {req['decided_by']}" if req.get("decided_by") else ""
        why = f": {req['decision_reason']}" if req.get("decision_reason") else ""
        typer.echo(f"  {req['status']}{by} on {when(req['decided_at'])}{why}")


def _done(req: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(req)
    else:
        _show(req)


@access_app.command("request")
@handle_errors
def request(
    project: str = ProjectArgument,
    reason: str = typer.Option(..., "--reason", help="who you are and why you need access"),
    repository: str | None = typer.Option(None, "--repository", help="the project's repo URL"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Request upload access to PROJECT (created on approval if new)."""
    with client(server) as api:
        req = api.post(
            "/access-requests",
            {"project": project, "reason": reason, "repository_url": repository},
        )
    _done(req, as_json)


@access_app.command("list")
@handle_errors
def list_requests(
    status: str = typer.Option(
        "pending", "--status", help="pending, approved, denied, withdrawn or all"
    ),
    everyone: bool = typer.Option(False, "--all", help="everyone's requests (site admins)"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """List your access requests (site admins: --all for everyone's)."""
    with client(server) as api:
        rows = api.get("/access-requests", status=status, all=everyone or None)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"no {status if status != 'all' else ''} access requests".replace("  ", " "))
        return
    table(
        [
            [
                f"#{r['id']}",
                r["project"],
                r["requester"],
                r["requester_organisation"] or "-",
                r["status"],
                when(r["created_at"]),
            ]
            for r in rows
        ],
        ["ID", "PROJECT", "REQUESTER", "ORGANISATION", "STATUS", "FILED"],
    )


@access_app.command("show")
@handle_errors
def show(
    request_id: int = RequestArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """Show a request with its comments and decision."""
    with client(server) as api:
        _done(api.get(f"/access-requests/{request_id}"), as_json)


@access_app.command("comment")
@handle_errors
def comment(
    request_id: int = RequestArgument,
    message: str = argument("the comment"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Ask (reviewers) or answer (requester) on a pending request."""
    with client(server) as api:
        _done(api.post(f"/access-requests/{request_id}/comments", {"body": message}), as_json)


@access_app.command("approve")
@handle_errors
def approve(
    request_id: int = RequestArgument,
    reason: str | None = typer.Option(
        None, "--reason", help="why (the requester sees it)", show_default=False
    ),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Approve (site admins outside the project and the requester's organisation)."""
    with client(server) as api:
        _done(api.post(f"/access-requests/{request_id}/approve", {"reason": reason}), as_json)


@access_app.command("deny")
@handle_errors
def deny(
    request_id: int = RequestArgument,
    reason: str = typer.Option(..., "--reason", help="told to the requester"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Deny a request, with a reason."""
    with client(server) as api:
        _done(api.post(f"/access-requests/{request_id}/deny", {"reason": reason}), as_json)


@access_app.command("withdraw")
@handle_errors
def withdraw(
    request_id: int = RequestArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """Withdraw your own pending request."""
    with client(server) as api:
        _done(api.post(f"/access-requests/{request_id}/withdraw"), as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
