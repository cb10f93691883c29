"""``nightwheels token create|list|revoke|rotate``.

Remote (your own tokens, through the API): give a server (``--server`` or
``NIGHTWHEELS_SERVER``) and a manage token in ``NIGHTWHEELS_TOKEN``. Local (on the server
machine, as its administrator): ``token create --user NAME`` creates a token for that user
(making them an uploader of each named project, created if new); ``list``, ``revoke`` and
``rotate`` act locally when no server is configured or ``--data`` is given.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer

from nightwheels.cli.common import DataOption, argument, parse_duration
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import (
    JsonOption,
    ServerOption,
    client,
    is_remote,
    local_services,
    note,
    print_json,
    segment,
    table,
    warn,
    when,
)
from nightwheels.client.api import ClientConfigError
from nightwheels.errors import InvalidRequest

token_app = typer.Typer(
    help="API tokens: create (shown once), list, revoke, rotate.", no_args_is_help=True
)


def _info_dict(info: Any) -> dict[str, Any]:
    return {**asdict(info), "status": info.status}


def _created_dict(created: Any) -> dict[str, Any]:
    data = asdict(created)
    data["token"] = data.pop("secret")
    data.pop("id", None)
    return data


def _announce(created: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(created)
        return
    typer.echo(created["token"])
    scope = ", ".join(created.get("projects") or []) or "any project"
    expiry = f", expires {when(created.get('expires_at'))}" if created.get("expires_at") else ""
    perm = ",".join(created.get("permissions") or [])
    note(
        f"token {created['name']!r} (prefix {created['prefix']}) for {created.get('owner')}: "
        f"{perm} on {scope}{expiry}. Store it now: it is not shown again."
    )


@token_app.command("create")
@handle_errors
def token_create(
    project: list[str] = typer.Option(
        [],
        "--project",
        help="project the token may upload to, or report test results for (repeatable)",
    ),
    name: str | None = typer.Option(
        None, "--name", help="a name to recognise the token by (default: its permission)"
    ),
    expires: str | None = typer.Option(None, "--expires", help="lifetime, e.g. 90d"),
    permission: str = typer.Option(
        "upload",
        "--permission",
        help="upload (CI), manage (the API, e.g. this CLI) or report (nightwheels report --server)",
    ),
    user: str | None = typer.Option(
        None, "--user", help="local admin: create the token for USER on this server machine"
    ),
    server: str | None = ServerOption,
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Create a token; it is printed once, on stdout."""
    name = name or permission
    lifetime = parse_duration(expires) if expires else None
    if user is None:
        if not is_remote(server, data):
            raise ClientConfigError(
                "give --server (or NIGHTWHEELS_SERVER) to create your own token through the "
                "API, or --user NAME to create one for a user as this machine's administrator"
            )
        with client(server) as api:
            created = api.post(
                "/tokens",
                {
                    "name": name,
                    "projects": project,
                    "permission": permission,
                    "expires_in_days": lifetime / timedelta(days=1) if lifetime else None,
                },
            )
        _announce(created, as_json)
        return
    _announce(_local_create(user, project, name, permission, lifetime, data), as_json)


def _local_create(
    user: str,
    projects: list[str],
    name: str,
    permission: str,
    lifetime: timedelta | None,
    data: Path | None,
) -> dict[str, Any]:
    from nightwheels.services import accounts
    from nightwheels.services.audit import SYSTEM

    services = local_services(data)
    expires_at = datetime.now(UTC) + lifetime if lifetime else None
    try:
        with services.db.write() as session:
            created = accounts.create_token_as_admin(
                session,
                SYSTEM,
                accounts.get_user(session, user),
                name=name,
                projects=projects,
                permission=permission,
                expires_at=expires_at,
            )
    finally:
        services.close()
    return _created_dict(created)


@token_app.command("list")
@handle_errors
def token_list(
    project: str | None = typer.Option(
        None, "--project", help="tokens that can upload to PROJECT (its admins)"
    ),
    user: str | None = typer.Option(None, "--user", help="local admin: this user's tokens"),
    include_inactive: bool = typer.Option(False, "--all", help="also revoked and expired"),
    server: str | None = ServerOption,
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """List tokens: name, prefix, scope, created, last used, expiry (and expiry warnings)."""
    if is_remote(server, data):
        if user is not None:
            raise InvalidRequest("--user is for the local admin; over the API you see your own")
        with client(server) as api:
            if project:
                rows = api.get(f"/projects/{segment(project)}/tokens")
            else:
                rows = api.get("/tokens", include_inactive=include_inactive or None)
    else:
        rows = _local_list(project, user, include_inactive, data)
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no tokens")
        return
    table(
        [
            [
                r["name"],
                r["prefix"],
                r["owner"],
                ",".join(r["permissions"]),
                ",".join(r["projects"]) if r["projects"] else "*",
                when(r["created_at"]),
                when(r["last_used_at"]),
                when(r["expires_at"]),
                r["status"],
            ]
            for r in rows
        ],
        [
            "NAME",
            "PREFIX",
            "OWNER",
            "PERM",
            "PROJECTS",
            "CREATED",
            "LAST USED",
            "EXPIRES",
            "STATUS",
        ],
    )
    for r in rows:
        if r.get("warning"):
            warn(r["warning"])


def _local_list(
    project: str | None, user: str | None, include_inactive: bool, data: Path | None
) -> list[dict[str, Any]]:
    from nightwheels.services import accounts, tokens

    services = local_services(data)
    try:
        with services.db.read() as session:
            if project:
                infos = tokens.project_tokens(session, accounts.get_project(session, project))
            else:
                owner = accounts.get_user(session, user) if user else None
                infos = tokens.list_tokens(session, user=owner, include_inactive=include_inactive)
            return [_info_dict(i) for i in infos]
    finally:
        services.close()


@token_app.command("revoke")
@handle_errors
def token_revoke(
    prefix: str = argument("the token's prefix, as token list shows it"),
    server: str | None = ServerOption,
    data: Path | None = DataOption,
) -> None:
    """Revoke a token by its prefix: refused from the next request on."""
    if is_remote(server, data):
        with client(server) as api:
            api.delete(f"/tokens/{segment(prefix)}")
    else:
        from nightwheels.services import tokens
        from nightwheels.services.audit import SYSTEM

        services = local_services(data)
        try:
            with services.db.write() as session:
                tokens.revoke_token(session, SYSTEM, prefix)
        finally:
            services.close()
    typer.echo(f"revoked token {prefix}")


@token_app.command("rotate")
@handle_errors
def token_rotate(
    prefix: str = argument("the token's prefix, as token list shows it"),
    server: str | None = ServerOption,
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Replace a token by a new one (same name, scope, lifetime) and revoke the old one.

    Project admins may rotate any token that uploads only to projects they admin; the new
    token is theirs. Update the CI secret with the printed token.
    """
    if is_remote(server, data):
        with client(server) as api:
            created = api.post(f"/tokens/{segment(prefix)}/rotate")
    else:
        from nightwheels.services import tokens
        from nightwheels.services.audit import SYSTEM

        services = local_services(data)
        try:
            with services.db.write() as session:
                created = _created_dict(tokens.rotate_token(session, SYSTEM, prefix))
        finally:
            services.close()
    _announce(created, as_json)
    note(f"token {prefix} is revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
