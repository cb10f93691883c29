"""Retention and storage commands: prune, gc, fsck, stale, notify, usage, pin, retention."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from nightwheels.cli.common import DataOption, ProjectArgument, argument, open_index
from nightwheels.cli.exits import (
    EXIT_ABORTED,
    EXIT_ERROR,
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    database_unreachable,
    fail,
    handle_errors,
)
from nightwheels.core.sizes import format_size
from nightwheels.core.text import counted
from nightwheels.errors import InvalidRequest

if TYPE_CHECKING:
    from nightwheels.services.context import Services

retention_app = typer.Typer(
    help="Per-project retention overrides and quota (local admin).", no_args_is_help=True
)

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def parse_size(text: str) -> int:
    """``500M``, ``5GiB``, ``1000000`` (bytes)."""
    match = _SIZE.match(text)
    if not match:
        raise InvalidRequest(f"{text!r} is not a size such as 500MiB, 5GB or 1000000")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = unit[:1]
    factor = 1024 ** "bkmgt".index(base) if "i" in unit else _UNITS[base]
    return int(number * factor)


def _services(data: Path | None) -> Services:
    return open_index(data)


def _duration_seconds(text: str) -> float:
    from nightwheels.cli.common import parse_duration

    if text.strip().endswith("s"):
        return float(text.strip()[:-1])
    return parse_duration(text).total_seconds()


def prune_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="print what would be removed, and why"),
    force: bool = typer.Option(
        False, "--force", help="allow removing more than the set share of a project's files"
    ),
    project: list[str] = typer.Option([], "--project", help="only these projects"),
    explain: bool = typer.Option(False, "--explain", help="also print kept files and why"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    data: Path | None = DataOption,
) -> None:
    """Remove old nightlies by the retention policy (see docs/retention.md).

    Any file the rules cannot read aborts the run before anything is removed (exit status
    5). Projects whose removals would exceed the share limit are left alone unless --force
    (exit status 4). A database that cannot be reached: exit status 6. With --json, an
    error is printed as {"error": code, "message": ...} too.
    """
    from nightwheels.errors import NightwheelsError, PruneAborted
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.prune import prune

    def failed(code: int, error: str, message: str) -> NoReturn:
        if as_json:
            doc = {"error": error, "message": message, "exit_status": code}
            typer.echo(json.dumps(doc, indent=2))
        fail(message, code)

    try:
        services = _services(data)
        result = prune(services, SYSTEM, dry_run=dry_run, force=force, projects=project or None)
    except PruneAborted as exc:
        failed(EXIT_ABORTED, exc.code, exc.message)
    except NightwheelsError as exc:
        failed(EXIT_ERROR, exc.code, exc.message)
    except Exception as exc:
        reason = database_unreachable(exc)
        if reason is None:
            raise
        failed(EXIT_UNAVAILABLE, "database-unavailable", f"cannot use the database: {reason}")
    plan = result.plan
    if as_json:
        doc: dict[str, Any] = {
            "dry_run": dry_run,
            "projects": [
                {
                    "project": p.project,
                    "refused": p.refused,
                    "files": [
                        {
                            "filename": d.file.filename,
                            "label": d.file.label,
                            "version": d.file.version,
                            "remove": d.remove and not p.refused,
                            "reason": d.reason,
                        }
                        for d in p.decisions
                        if explain or d.remove
                    ],
                }
                for p in plan.projects
            ],
            "removed": result.removed_count if not dry_run else 0,
            "skipped": result.skipped,
        }
        if dry_run:
            doc["would_remove"] = len(plan.removals)
        typer.echo(json.dumps(doc, indent=2))
    else:
        verb = "would remove" if dry_run else "removed"
        applied = (
            {(name, d.file.id) for name, ds in result.removed.items() for d in ds}
            if not dry_run
            else {(name, d.file.id) for name, d in plan.removals}
        )
        for p in plan.projects:
            for d in p.decisions:
                label = "" if d.file.label == "main" else f" [{d.file.label}]"
                if (p.project, d.file.id) in applied:
                    typer.echo(f"{verb} {d.file.filename}{label}: {d.reason}")
                elif explain:
                    why = f"refused ({p.refused})" if d.remove else d.reason
                    typer.echo(f"keep {d.file.filename}{label}: {why}")
        count = len(applied)
        size = sum(d.file.size for name, d in plan.removals if (name, d.file.id) in applied)
        typer.echo(
            f"{verb} {count} file{'s' if count != 1 else ''} ({format_size(size)}) "
            f"of {sum(p.total for p in plan.projects)} in {len(plan.projects)} projects",
            err=True,
        )
        for project_name, skipped in sorted(result.skipped.items()):
            typer.echo(f"{project_name}: {skipped} planned removals skipped (changed meanwhile)")
    refused = plan.refused
    if refused:
        for p in refused:
            typer.echo(f"refused {p.project}: {p.refused}", err=True)
        fail(
            f"{len(refused)} project(s) not pruned: review with --dry-run, then use --force",
            EXIT_REFUSED,
        )


def gc_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="report without deleting"),
    data: Path | None = DataOption,
) -> None:
    """Forget removed files past the history window and delete bytes no file uses."""
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.gc import collect

    services = _services(data)
    result = collect(services, SYSTEM, dry_run=dry_run)
    verb = "would" if dry_run else ""
    typer.echo(
        f"{verb + ' ' if verb else ''}purge {result.purged_rows} expired history rows; "
        f"{verb + ' ' if verb else ''}delete {len(result.deleted)} blobs ({format_size(result.freed_bytes)}); "
        f"{result.recent} unused blobs within the grace period kept"
    )


def fsck_command(
    repair: bool = typer.Option(False, "--repair", help="repair what is safe to repair"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="hash every blob"),
    tmp_age: str = typer.Option(
        "1h", "--tmp-age", help="temporary files older than this are leftovers (e.g. 1h, 0s)"
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    data: Path | None = DataOption,
) -> None:
    """Check that every row has its bytes and every blob its row; exit 1 on problems."""
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.fsck import fsck

    services = _services(data)
    report = fsck(
        services, SYSTEM, repair=repair, verify=verify, tmp_age=_duration_seconds(tmp_age)
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "rows": report.rows,
                    "blobs": report.blobs,
                    "verified": report.verified,
                    "unservable": len(report.unservable),
                    "findings": [
                        {
                            "kind": f.kind,
                            "subject": f.subject,
                            "detail": f.detail,
                            "listed": f.listed,
                            "repaired": f.repaired,
                        }
                        for f in report.findings
                    ],
                },
                indent=2,
            )
        )
    else:
        for f in report.findings:
            status = f" -> {f.repaired}" if f.repaired else ""
            listed = " (LISTED)" if f.listed else ""
            typer.echo(f"{f.kind}{listed}: {f.subject}: {f.detail}{status}")
        typer.echo(
            f"checked {report.rows} rows, {report.blobs} blobs ({report.verified} hashed): "
            f"{counted(len(report.problems), 'problem')}, "
            f"{counted(len(report.unservable), 'listed file')} unservable",
            err=True,
        )
    if report.problems:
        raise typer.Exit(1)


def stale_command(
    show_all: bool = typer.Option(False, "--all", help="list fresh projects too"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    data: Path | None = DataOption,
) -> None:
    """Projects without an upload for the warning threshold (or all, with --all)."""
    from nightwheels.services import freshness

    services = _services(data)
    with services.db.read() as session:
        rows = freshness.freshness(session, services.settings)
    if not show_all:
        rows = [r for r in rows if r.level is not None]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "project": r.project,
                        "last_upload": r.last_upload.isoformat() if r.last_upload else None,
                        "age_days": r.age_days,
                        "level": r.level,
                        "exempt": r.exempt,
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo(f"no project is older than {services.settings.freshness_warn_days} days")
        return
    for r in rows:
        last = f"{r.last_upload:%Y-%m-%d %H:%M}" if r.last_upload else "never"
        age = f"{r.age_days} days" if r.age_days is not None else "-"
        flags = " (exempt)" if r.exempt else ""
        typer.echo(f"{r.project:30} {last:17} {age:>9}  {r.level or 'fresh'}{flags}")


def notify_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="show notices without sending"),
    data: Path | None = DataOption,
) -> None:
    """Send the freshness notices that are due (warn, final warning, resolved)."""
    from nightwheels.services.freshness import notify
    from nightwheels.trackers.notifiers import from_settings

    services = _services(data)
    notifiers = from_settings(services.settings, dry_run=dry_run or None)
    if not notifiers:
        fail(
            "no notifier is configured: set NIGHTWHEELS_GITHUB_TOKEN, _NOTIFY_WEBHOOK_URL or _SMTP_HOST"
        )
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.freshness import notice_warnings

    for warning in notice_warnings(services.settings, notifiers):
        typer.echo(f"warning: {warning}", err=True)
    outcomes = notify(services, SYSTEM, notifiers)
    for o in outcomes:
        typer.echo(
            f"{o.project}: {o.action} via {o.notifier}: {o.delivery.outcome} {o.delivery.detail}"
        )
    if not outcomes:
        typer.echo("no notice is due")
    if any(o.delivery.outcome == "failed" for o in outcomes):
        raise typer.Exit(1)


def usage_command(
    project: str | None = argument("project name (default: every project)", None),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    data: Path | None = DataOption,
) -> None:
    """Storage used per project: listed files (what a quota counts) and history."""
    from nightwheels.services.retention import usage

    services = _services(data)
    with services.db.read() as session:
        rows = usage(session, project)
    if as_json:
        typer.echo(json.dumps([u.__dict__ for u in rows], indent=2))
        return
    typer.echo(f"{'project':30} {'files':>7} {'listed':>11} {'history':>11} {'quota':>11}  used")
    for u in rows:
        share = f"{u.quota_share:.0%}" if u.quota_share is not None else ""
        typer.echo(
            f"{u.project:30} {u.live_files:>7} {format_size(u.live_bytes):>11} "
            f"{format_size(u.history_bytes):>11} {format_size(u.quota_bytes):>11}  {share}"
        )


def pin_command(
    project: str = ProjectArgument,
    version: str | None = argument("version to pin (or --file)", None),
    filename: str | None = typer.Option(None, "--file", help="pin one file"),
    undo: bool = typer.Option(False, "--undo", help="unpin"),
    data: Path | None = DataOption,
) -> None:
    """Pin a version (or one file) of PROJECT: prune never removes it."""
    from nightwheels.services.audit import SYSTEM
    from nightwheels.services.retention import set_pinned

    services = _services(data)
    names = set_pinned(
        services, SYSTEM, project, version=version, filename=filename, pinned=not undo
    )
    for n in names:
        typer.echo(f"{'unpinned' if undo else 'pinned'} {n}")


def _show(info: Any) -> None:
    p = info.effective

    def src(value: object) -> str:
        return "" if value is None else " (project)"

    typer.echo(f"project   {info.project}")
    typer.echo(f"keep      {counted(p.keep, 'newest version')}{src(info.keep)}")
    typer.echo(f"days      {p.days}{src(info.days)}; last file of a tag kept {p.tag_days} days")
    typer.echo(f"exempt    {'yes' if info.exempt else 'no'}")
    typer.echo(
        f"quota     {format_size(info.quota_bytes) if info.quota_bytes is not None else 'none'}"
    )
    typer.echo(f"repository {info.repository_url or '-'}")


@retention_app.command("show")
@handle_errors
def retention_show(project: str = ProjectArgument, data: Path | None = DataOption) -> None:
    """The effective retention policy of PROJECT."""
    from nightwheels.services.retention import get_retention

    _show(get_retention(_services(data), project))


def _count(text: str | None, what: str) -> int | None:
    if text is None or text.lower() == "default":
        return None
    if not text.isdigit():
        raise InvalidRequest(f"{what} must be a whole number or 'default', not {text!r}")
    return int(text)


@retention_app.command("set")
@handle_errors
def retention_set(
    project: str = ProjectArgument,
    keep: str | None = typer.Option(None, "--keep", help="newest versions kept, or 'default'"),
    days: str | None = typer.Option(None, "--days", help="days a version is kept, or 'default'"),
    exempt: bool | None = typer.Option(None, "--exempt/--no-exempt", help="never prune"),
    quota: str | None = typer.Option(None, "--quota", help="e.g. 10GiB, or 'none'"),
    repository: str | None = typer.Option(
        None, "--repository", help="repository URL (GitHub freshness notices), '' to clear"
    ),
    data: Path | None = DataOption,
) -> None:
    """Override the server's retention settings for PROJECT, or set its quota."""
    from nightwheels.services.retention import set_retention

    changes: dict[str, Any] = {}
    if keep is not None:
        changes["retention_keep"] = _count(keep, "--keep")
    if days is not None:
        changes["retention_days"] = _count(days, "--days")
    if exempt is not None:
        changes["retention_exempt"] = exempt
    if quota is not None:
        changes["quota_bytes"] = None if quota.lower() in ("none", "default") else parse_size(quota)
    if not changes and repository is None:
        raise InvalidRequest(
            "nothing to change: give --keep, --days, --exempt, --quota or --repository"
        )
    from nightwheels.services.audit import SYSTEM

    _show(set_retention(_services(data), SYSTEM, project, changes, repository_url=repository))


def register(app: typer.Typer) -> None:
    for name, fn in (
        ("prune", prune_command),
        ("gc", gc_command),
        ("fsck", fsck_command),
        ("stale", stale_command),
        ("notify", notify_command),
        ("usage", usage_command),
        ("pin", pin_command),
    ):
        app.command(name)(handle_errors(fn))
    app.add_typer(retention_app, name="retention")
