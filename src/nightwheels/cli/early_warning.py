"""``nightwheels project known-bad`` and ``nightwheels project alerts ...`` (API; project
admins): mark builds known bad, and choose where upstream alerts go (docs/early-warning.md)."""

from __future__ import annotations

import sys

import typer

from nightwheels.cli.common import ProjectArgument, argument
from nightwheels.cli.exits import handle_errors
from nightwheels.cli.remote import (
    JsonOption,
    ServerOption,
    client,
    print_json,
    segment,
    table,
    when,
)
from nightwheels.errors import InvalidRequest


class UsageError(InvalidRequest):
    """Options that do not go together: a usage error (exit 2)."""

    exit_status = 2


alerts_app = typer.Typer(
    help="Where upstream alerts go: a signed webhook, a GitHub issue, e-mail (project admins).",
    no_args_is_help=True,
)


@handle_errors
def known_bad(
    project: str = ProjectArgument,
    version: str | None = typer.Option(None, "--version", help="mark every file of this version"),
    sha256: list[str] = typer.Option(
        [], "--sha256", help="mark this file (repeatable; instead of --version)"
    ),
    reason: str | None = typer.Option(
        None, "--reason", help="what is wrong, shown to downstreams (required to mark)"
    ),
    link: str | None = typer.Option(None, "--link", help="an http(s) link to the fix or issue"),
    remove: bool = typer.Option(False, "--remove", help="take the mark off instead"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """List PROJECT's known-bad builds, or mark one (--version or --sha256, with --reason).

    The build stays installable (bisects keep working); downstreams see "known upstream
    regression" in the matrix and their tracking issues."""
    path = f"/projects/{segment(project)}/known-bad"
    chosen = version is not None or bool(sha256)
    if (remove or reason is not None or link is not None) and not chosen:
        raise UsageError("give the build: --version V or --sha256 S")
    if chosen and not remove and not reason:
        raise UsageError("say what is wrong: --reason TEXT (or --remove the mark)")
    with client(server, need_token=chosen) as api:
        if not chosen:
            result = api.get(path)
        elif remove:
            result = api.post(path + "/remove", {"version": version, "sha256": sha256})
        else:
            body = {"version": version, "sha256": sha256, "reason": reason, "link": link}
            result = api.post(path, body)
    if as_json:
        print_json(result)
        return
    if chosen and remove:
        typer.echo(f"{project}: known-bad mark removed")
        return
    if not result:
        typer.echo(f"{project} has no known-bad builds")
        return
    table(
        [[m["version"], m["filename"], m["reason"], m["link"] or "-", when(m["marked_at"])]
         for m in result],
        ["VERSION", "FILE", "REASON", "LINK", "MARKED"],
    )  # fmt: skip


def _secret(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    secret = sys.stdin.readline().strip()
    if not secret:
        raise UsageError("--secret-stdin: the first line of stdin is empty")
    return secret


@alerts_app.command("add")
@handle_errors
def add(
    project: str = ProjectArgument,
    webhook: str | None = typer.Option(None, "--webhook", help="POST signed JSON to this URL"),
    github: str | None = typer.Option(
        None, "--github", help="open an issue per alert in this repository (OWNER/NAME)"
    ),
    email: str | None = typer.Option(None, "--email", help="send mail to this address"),
    secret_stdin: bool = typer.Option(
        False,
        "--secret-stdin",
        help="read the secret from stdin's first line: the webhook's HMAC key or the "
        "GitHub token (never on the command line)",
    ),
    digest: bool = typer.Option(False, "--digest", help="one message a day instead of each"),
    server: str | None = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Send PROJECT's upstream alerts to one more channel.

    Give exactly one of --webhook, --github, --email."""
    given = [(k, v) for k, v in (("webhook", webhook), ("github", github), ("email", email)) if v]
    if len(given) != 1:
        raise UsageError("give exactly one of --webhook URL, --github OWNER/NAME, --email ADDR")
    (kind, target), secret = given[0], _secret(secret_stdin)
    if kind == "github" and not secret:
        raise UsageError("a github channel needs a token that may write issues: --secret-stdin")
    with client(server) as api:
        channel = api.post(
            f"/projects/{segment(project)}/alert-channels",
            {"kind": kind, "target": target, "secret": secret, "digest": digest},
        )
    if as_json:
        print_json(channel)
        return
    signed = ", signed" if channel["has_secret"] and kind == "webhook" else ""
    often = "daily digest" if channel["digest"] else "each alert"
    typer.echo(
        f"channel #{channel['id']}: {kind} {channel['target']} ({often}{signed}) for {project}"
    )


@alerts_app.command("list")
@handle_errors
def list_channels(
    project: str = ProjectArgument, server: str | None = ServerOption, as_json: bool = JsonOption
) -> None:
    """List where PROJECT's upstream alerts go."""
    with client(server) as api:
        rows = api.get(f"/projects/{segment(project)}/alert-channels")
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo(f"{project} has no alert channels")
        return
    table(
        [[f"#{c['id']}", c["kind"], c["target"], "digest" if c["digest"] else "each",
          "yes" if c["has_secret"] else "no"] for c in rows],
        ["ID", "KIND", "TARGET", "WHEN", "SECRET"],
    )  # fmt: skip


@alerts_app.command("remove")
@handle_errors
def remove_channel(
    project: str = ProjectArgument,
    channel_id: int = argument("the channel's number, as alerts list shows it"),
    server: str | None = ServerOption,
) -> None:
    """Stop sending PROJECT's upstream alerts to a channel."""
    with client(server) as api:
        api.delete(f"/projects/{segment(project)}/alert-channels/{channel_id}")
    typer.echo(f"removed alert channel #{channel_id} from {project}")


def register(app: typer.Typer) -> None:
    from nightwheels.cli.projects import project_app

    project_app.command("known-bad")(known_bad)
    project_app.add_typer(alerts_app, name="alerts")
