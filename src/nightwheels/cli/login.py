"""``nightwheels login`` (password -> manage token) and ``nightwheels whoami``."""

from __future__ import annotations

import sys

import typer

from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import JsonOption, ServerOption, client, note, print_json, warn


@handle_errors
def login(
    user: str = typer.Option(..., "--user", help="your user name"),
    name: str = typer.Option("cli", "--name", help="a name for the token"),
    days: float = typer.Option(30, "--days", help="token lifetime in days"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="read the password from the first line of stdin"
    ),
    server: str | None = ServerOption,
) -> None:
    """Sign in with your password; prints a manage token for NIGHTWHEELS_TOKEN."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, err=True)
    with client(server, need_token=False) as api:
        created = api.post(
            "/login",
            {"user": user, "password": password, "token_name": name, "expires_in_days": days},
        )
    typer.echo(created["token"])
    note(
        f"manage token {created['name']!r} (prefix {created['prefix']}) for {user}: "
        "export NIGHTWHEELS_TOKEN=<it> to use the management commands"
    )


@handle_errors
def whoami(server: str | None = ServerOption, as_json: bool = JsonOption) -> None:
    """Who the server thinks you are, and what your token may do."""
    with client(server) as api:
        me = api.get("/me")
    if as_json:
        print_json(me)
        return
    token = me["token"]
    scope = ", ".join(token["projects"]) if token["projects"] else "any project"
    site = " (site admin)" if me["is_admin"] else ""
    typer.echo(
        f"{me['name']}{site}: token {token['name']!r}, {','.join(token['permissions'])} on {scope}"
    )
    if token.get("warning"):
        warn(token["warning"])


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("whoami")(whoami)
