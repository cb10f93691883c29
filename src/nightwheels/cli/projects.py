"""``nightwheels project show|members|publisher ...`` (API)."""

from __future__ import annotations

from typing import Any

import typer

from nightwheels.cli.common import ProjectArgument, UserArgument, argument
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import (
    JsonOption,
    ServerOption,
    client,
    print_json,
    segment,
    table,
    warn,
    when,
)
from nightwheels.core.text import counted

project_app = typer.Typer(
    help="Projects: members, roles, trusted publishers.", no_args_is_help=True
)
members_app = typer.Typer(
    help="Add, remove or promote members (project admins).", no_args_is_help=True
)
publisher_app = typer.Typer(
    help="Trusted publishers: GitHub Actions workflows that upload without a stored token.",
    no_args_is_help=True,
)
project_app.add_typer(members_app, name="members")
project_app.add_typer(publisher_app, name="publisher")


def _print_members(membership: dict[str, Any]) -> None:
    if membership["members"]:
        table(
            [
                [m["user"], m["role"], m["organisation"] or "-", when(m["since"])]
                for m in membership["members"]
            ],
            ["MEMBER", "ROLE", "ORGANISATION", "SINCE"],
        )
    else:
        typer.echo("no members")
    for w in membership["warnings"]:
        warn(w)


@project_app.command("show")
@handle_errors
def show(
    name: str = ProjectArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """A project's files count, members and representation warnings."""
    with client(server, need_token=False) as api:
        project = api.get(f"/projects/{segment(name)}")
        membership = api.get(f"/projects/{segment(name)}/members")
    if as_json:
        print_json(
            {
                "name": project["name"],
                "display_name": project["display_name"],
                "serial": project["serial"],
                "files": len(project["files"]),
                "members": membership["members"],
                "warnings": membership["warnings"],
            }
        )
        return
    versions = {f["version"] for f in project["files"]}
    typer.echo(
        f"{project['display_name']} ({project['name']}): "
        f"{counted(len(project['files']), 'file')}, {counted(len(versions), 'version')}"
    )
    _print_members(membership)


def _membership_done(membership: dict[str, Any], message: str, as_json: bool) -> None:
    if as_json:
        print_json(membership)
        return
    typer.echo(message)
    for w in membership["warnings"]:
        warn(w)


@members_app.command("add")
@handle_errors
def add(
    project: str = ProjectArgument,
    user: str = UserArgument,
    role: str = typer.Option("uploader", "--role", help="admin or uploader"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Add USER to PROJECT, or change their role."""
    with client(server) as api:
        result = api.put(f"/projects/{segment(project)}/members/{segment(user)}", {"role": role})
    _membership_done(result, f"{user} is {role} of {result['project']}", as_json)


@members_app.command("remove")
@handle_errors
def remove(
    project: str = ProjectArgument,
    user: str = UserArgument,
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Remove USER from PROJECT: their tokens stop uploading to it at once."""
    with client(server) as api:
        result = api.delete(f"/projects/{segment(project)}/members/{segment(user)}")
    _membership_done(result, f"removed {user} from {result['project']}", as_json)


@members_app.command("transfer")
@handle_errors
def transfer(
    project: str = ProjectArgument,
    user: str = UserArgument,
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Hand your admin role on PROJECT to USER (you stay an uploader)."""
    with client(server) as api:
        result = api.post(f"/projects/{segment(project)}/transfer", {"user": user})
    _membership_done(result, f"{user} is now admin of {result['project']}", as_json)


@members_app.command("list")
@handle_errors
def list_members(
    project: str = ProjectArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """List PROJECT's members."""
    with client(server, need_token=False) as api:
        membership = api.get(f"/projects/{segment(project)}/members")
    if as_json:
        print_json(membership)
    else:
        _print_members(membership)


@publisher_app.command("add")
@handle_errors
def publisher_add(
    project: str = ProjectArgument,
    repository: str = typer.Option(..., "--repository", help="GitHub owner/name"),
    workflow: str = typer.Option(..., "--workflow", help="workflow file name, e.g. nightly.yml"),
    environment: str | None = typer.Option(None, "--environment", help="GitHub environment"),
    ref: str | None = typer.Option(
        None, "--ref", help="the only ref it may publish from, e.g. refs/heads/main"
    ),
    owner_id: str | None = typer.Option(
        None, "--owner-id", help="GitHub's numeric owner id (default: pinned on first use)"
    ),
    repository_id: str | None = typer.Option(
        None, "--repository-id", help="GitHub's numeric repository id (default: likewise)"
    ),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Let a GitHub Actions workflow upload to PROJECT with its OIDC token."""
    with client(server) as api:
        pub = api.post(
            f"/projects/{segment(project)}/publishers",
            {
                "repository": repository,
                "workflow": workflow,
                "environment": environment,
                "ref": ref,
                "repository_owner_id": owner_id,
                "repository_id": repository_id,
            },
        )
    if as_json:
        print_json(pub)
    else:
        env = f" (environment {pub['environment']})" if pub["environment"] else ""
        env += f" (ref {pub['ref']})" if pub.get("ref") else ""
        typer.echo(
            f"publisher #{pub['id']}: {pub['repository']} {pub['workflow']}{env} may upload "
            f"to {pub['project']}"
        )


@publisher_app.command("list")
@handle_errors
def publisher_list(
    project: str = ProjectArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """List PROJECT's trusted publishers."""
    with client(server) as api:
        rows = api.get(f"/projects/{segment(project)}/publishers")
    if as_json:
        print_json(rows)
        return
    table(
        [
            [
                f"#{p['id']}",
                p["repository"],
                p["workflow"],
                p["environment"] or "-",
                p.get("ref") or "-",
                p.get("repository_owner_id") or "(first use)",
            ]
            for p in rows
        ],
        ["ID", "REPOSITORY", "WORKFLOW", "ENVIRONMENT", "REF", "OWNER ID"],
    )


@publisher_app.command("remove")
@handle_errors
def publisher_remove(
    project: str = ProjectArgument,
    publisher_id: int = argument("the publisher's number, as publisher list shows it"),
    server: str | None = ServerOption,
) -> None:
    """Remove a trusted publisher; tokens it obtained stop working at once."""
    with client(server) as api:
        api.delete(f"/projects/{segment(project)}/publishers/{publisher_id}")
    typer.echo(f"removed publisher #{publisher_id} from {project}")


@project_app.command("status")
@handle_errors
def status(
    project: str = ProjectArgument,
    new: str | None = typer.Option(
        None, "--set", help="active, archived, deprecated or quarantined (PEP 792)"
    ),
    reason: str | None = typer.Option(None, "--reason", help="shown to installers and on the web"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Show PROJECT's status, or --set it (project admins; a quarantine is lifted by a site
    admin). Archived and quarantined projects refuse uploads; quarantined ones list no files."""
    with client(server, need_token=new is not None) as api:
        if new is None:
            result = api.get(f"/projects/{segment(project)}/status")
        else:
            result = api.put(
                f"/projects/{segment(project)}/status", {"status": new, "reason": reason}
            )
    if as_json:
        print_json(result)
        return
    why = f": {result['reason']}" if result["reason"] else ""
    typer.echo(f"{result['project']} is {result['status']}{why}")


def register(app: typer.Typer) -> None:
    app.add_typer(project_app, name="project")
