"""``nightwheels admin ...``: local commands for the server machine's administrator.

They act directly on the data directory (``--data`` or ``NIGHTWHEELS_DATA``), with no
token: whoever can read the database is already the administrator. This is how the first
site admin is made (``admin user create root --admin`` then ``token create --user root
--permission manage``). ``nightwheels user ...`` is the same group, kept for scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from nightwheels.cli.common import DataOption, ProjectArgument, UserArgument
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import JsonOption, local_services, note, print_json, table, when
from nightwheels.errors import InvalidRequest

admin_app = typer.Typer(
    help="Local administration on the server machine (no token needed).", no_args_is_help=True
)
user_app = typer.Typer(
    help="User accounts (local admin, on the server machine).", no_args_is_help=True
)
member_app = typer.Typer(
    help="Project members (local admin: e.g. when a project lost its admins).",
    no_args_is_help=True,
)
admin_app.add_typer(user_app, name="user")
admin_app.add_typer(member_app, name="member")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise InvalidRequest("the password is empty")
    return password


PasswordStdin = typer.Option(
    False, "--password-stdin", help="read the password from the first line of stdin"
)


@user_app.command("create")
@handle_errors
def user_create(
    name: str = UserArgument,
    admin: bool = typer.Option(False, "--admin", help="make a site admin"),
    email: str | None = typer.Option(None, help="e-mail address", show_default=False),
    organisation: str | None = typer.Option(
        None, help="employer or organisation (reviews refuse same-organisation approvals)"
    ),
    password_stdin: bool = PasswordStdin,
    data: Path | None = DataOption,
) -> None:
    """Create a user."""
    from nightwheels.services import accounts
    from nightwheels.services.audit import SYSTEM

    password = _read_password(True) if password_stdin else None
    services = local_services(data)
    try:
        with services.db.write() as session:
            user = accounts.create_user(
                session, SYSTEM, name, email=email, organisation=organisation, is_admin=admin
            )
            if password is not None:
                accounts.set_password(session, SYSTEM, user, password)
    finally:
        services.close()
    typer.echo(f"created user {name}{' (site admin)' if admin else ''}")


@user_app.command("list")
@handle_errors
def user_list(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """List users."""
    from nightwheels.services import accounts

    services = local_services(data)
    try:
        with services.db.read() as session:
            users = [accounts.user_info(u) for u in accounts.list_users(session)]
    finally:
        services.close()
    if as_json:
        print_json(users)
        return
    table(
        [
            [
                u.name,
                u.organisation or "-",
                "admin" if u.is_admin else "",
                "disabled" if u.disabled else "",
                "yes" if u.has_password else "no",
                when(u.created_at),
            ]
            for u in users
        ],
        ["NAME", "ORGANISATION", "SITE", "STATE", "PASSWORD", "CREATED"],
    )


@user_app.command("update")
@handle_errors
def user_update(
    name: str = UserArgument,
    admin: bool | None = typer.Option(None, "--admin/--no-admin", help="site admin or not"),
    organisation: str | None = typer.Option(None, help="set the organisation ('' clears it)"),
    email: str | None = typer.Option(None, help="set the email ('' clears it)"),
    disabled: bool | None = typer.Option(
        None, "--disable/--enable", help="a disabled account's tokens stop working at once"
    ),
    data: Path | None = DataOption,
) -> None:
    """Change a user's site-admin status, organisation, email, or disable them."""
    from nightwheels.services import accounts
    from nightwheels.services.audit import SYSTEM

    changes: dict[str, str | None] = {}
    if organisation is not None:
        changes["organisation"] = organisation or None
    if email is not None:
        changes["email"] = email or None
    services = local_services(data)
    try:
        with services.db.write() as session:
            user = accounts.get_user(session, name)
            accounts.update_user(
                session, SYSTEM, user, is_admin=admin, disabled=disabled, **changes
            )
    finally:
        services.close()
    typer.echo(f"updated user {name}")


@user_app.command("set-password")
@handle_errors
def user_set_password(
    name: str = UserArgument, password_stdin: bool = PasswordStdin, data: Path | None = DataOption
) -> None:
    """Set a user's password (for the web UI and nightwheels login), hashed with argon2."""
    from nightwheels.services import accounts
    from nightwheels.services.audit import SYSTEM

    password = _read_password(password_stdin)
    services = local_services(data)
    try:
        with services.db.write() as session:
            accounts.set_password(session, SYSTEM, accounts.get_user(session, name), password)
    finally:
        services.close()
    typer.echo(f"password set for {name}")


@member_app.command("set")
@handle_errors
def member_set(
    project: str = ProjectArgument,
    user: str = UserArgument,
    role: str = typer.Option("uploader", "--role", help="admin or uploader"),
    data: Path | None = DataOption,
) -> None:
    """Give USER a ROLE on PROJECT (created if new)."""
    from nightwheels.services import accounts, members
    from nightwheels.services.audit import SYSTEM

    services = local_services(data)
    try:
        with services.db.write() as session:
            accounts.get_or_create_project(session, SYSTEM, project)
            result = members.set_member(session, SYSTEM, project, user, role)
    finally:
        services.close()
    typer.echo(f"{user} is {role} of {result.project}")
    for w in result.warnings:
        note(f"warning: {w}")


@member_app.command("remove")
@handle_errors
def member_remove(
    project: str = ProjectArgument,
    user: str = UserArgument,
    data: Path | None = DataOption,
) -> None:
    """Remove USER from PROJECT (never its last admin)."""
    from nightwheels.services import members
    from nightwheels.services.audit import SYSTEM

    services = local_services(data)
    try:
        with services.db.write() as session:
            result = members.remove_member(session, SYSTEM, project, user)
    finally:
        services.close()
    typer.echo(f"removed {user} from {result.project}")


def register(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")
    app.add_typer(user_app, name="user", hidden=True)  # the pre-admin spelling


@admin_app.command("publish")
@handle_errors
def admin_publish(
    files: list[Path] = typer.Argument(..., metavar="FILE...", help="wheels to publish"),
    uploaded_at: str = typer.Option(
        ...,
        "--uploaded-at",
        metavar="TIME",
        help="upload time to record: 2026-11-01T02:00:00Z, or an age such as 20d",
    ),
    owner: str = typer.Option(..., "--owner", help="user recorded as the uploader"),
    label: str = typer.Option("main", "--label", help="label to publish the files in"),
    data: Path | None = DataOption,
) -> None:
    """Publish wheels as if uploaded at TIME (rehearse retention on a copy, import history).

    The files get every check an upload gets; only the upload time is the operator's.
    Run on a copy of the data directory to see what a policy would do as time passes.
    """
    from datetime import UTC, datetime

    from nightwheels.cli.common import parse_duration
    from nightwheels.errors import NightwheelsError
    from nightwheels.services.backfill import publish_local

    text = uploaded_at.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        when = datetime.now(UTC) - parse_duration(text)
    services = local_services(data)
    try:
        answers = publish_local(services, owner, files, uploaded_at=when, label=label)
    finally:
        services.close()
    failed = 0
    for path, answer in zip(files, answers, strict=True):
        if isinstance(answer, NightwheelsError):
            failed += 1
            note(f"{path.name}: {answer.message}")
        else:
            typer.echo(f"{answer.outcome} {answer.filename} as uploaded at {when.isoformat()}")
    if failed:
        raise InvalidRequest(f"{failed} of {len(files)} files were not published")
